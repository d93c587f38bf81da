//! CloudTrail records built by name, shaped as CloudTrail writes them.

use serde_json::{Value, json};

/// The account every fixture lives in.
pub const ACCOUNT: &str = "111122223333";

/// An IAM user caller.
pub fn iam_user(name: &str) -> Value {
    json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
           "accountId": ACCOUNT, "accessKeyId": format!("AKIA{}", name.to_uppercase()), "userName": name})
}

/// A caller using an assumed-role session signed with `key`.
pub fn session(role: &str, session: &str, key: &str) -> Value {
    json!({"type": "AssumedRole", "principalId": format!("AROAEXAMPLE:{session}"),
           "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"), "accountId": ACCOUNT,
           "accessKeyId": key,
           "sessionContext": {"attributes": {"mfaAuthenticated": "false", "creationDate": "2024-05-02T01:00:00Z"},
                              "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT,
                                                "userName": role}}})
}

fn base(time: &str, source: &str, name: &str, caller: Value, id: &str) -> Value {
    json!({"eventVersion": "1.09", "userIdentity": caller, "eventTime": time, "eventSource": source,
           "eventName": name, "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.40",
           "userAgent": "aws-cli/2.15.0", "requestID": format!("req-{id}"), "eventID": id,
           "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT})
}

fn issued(role: &str, session: &str, key: &str) -> Value {
    json!({"credentials": {"accessKeyId": key, "expiration": "May 2, 2024, 3:00:00 AM", "sessionToken": "token"},
           "assumedRoleUser": {"assumedRoleId": format!("AROAEXAMPLE:{session}"),
                               "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}")}})
}

/// `AssumeRole` by `caller`, issuing `key` for `role`/`session`.
pub fn assume_role(id: &str, time: &str, caller: Value, role: &str, session: &str, key: &str) -> Value {
    let mut e = base(time, "sts.amazonaws.com", "AssumeRole", caller, id);
    e["requestParameters"] =
        json!({"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "roleSessionName": session});
    e["responseElements"] = issued(role, session, key);
    e
}

/// IAM Identity Center sign-in to a permission set: `AssumeRoleWithSAML`
/// through the AWSSSO provider, the person as session name.
pub fn sso(id: &str, time: &str, person: &str, key: &str) -> Value {
    let role = "AWSReservedSSO_Admin_0123456789abcdef";
    let caller = json!({"type": "SAMLUser", "principalId": format!("AWSSSO:{person}"), "userName": person,
                        "identityProvider": "AWSSSO_0123456789abcdef_DO_NOT_DELETE"});
    let mut e = base(time, "sts.amazonaws.com", "AssumeRoleWithSAML", caller, id);
    e["requestParameters"] = json!({
        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{role}"),
        "principalArn": format!("arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_0123456789abcdef_DO_NOT_DELETE"),
        "roleSessionName": person, "durationSeconds": 3600});
    e["responseElements"] = issued(role, person, key);
    e
}

/// `AssumeRoleWithWebIdentity` by an OIDC subject.
pub fn web_identity(id: &str, time: &str, subject: &str, provider: &str, role: &str, key: &str) -> Value {
    let caller = json!({"type": "WebIdentityUser", "principalId": format!("{provider}:{subject}"), "userName": subject,
                        "identityProvider": provider});
    let mut e = base(time, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", caller, id);
    e["requestParameters"] = json!({"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "roleSessionName": "ci"});
    e["responseElements"] = issued(role, "ci", key);
    e
}

/// `eks:UpdateClusterConfig` turning log types on or off.
pub fn cluster_logging(id: &str, time: &str, caller: Value, cluster: &str, types: &[&str], enabled: bool) -> Value {
    let mut e = base(time, "eks.amazonaws.com", "UpdateClusterConfig", caller, id);
    e["requestParameters"] =
        json!({"name": cluster, "logging": {"clusterLogging": [{"types": types, "enabled": enabled}]}});
    e["responseElements"] = json!({"update": {"id": "u-1", "status": "InProgress", "type": "LoggingUpdate"}});
    e
}

/// `eks:AssociateAccessPolicy` (its principal ARN URL-encoded, as EKS logs it).
pub fn associate_access_policy(
    id: &str,
    time: &str,
    caller: Value,
    cluster: &str,
    principal: &str,
    policy: &str,
) -> Value {
    let mut e = base(time, "eks.amazonaws.com", "AssociateAccessPolicy", caller, id);
    let encoded = principal.replace(':', "%3A").replace('/', "%2F");
    e["requestParameters"] = json!({"name": cluster, "principalArn": encoded,
        "policyArn": format!("arn:aws:eks::aws:cluster-access-policy/{policy}"), "accessScope": {"type": "cluster"}});
    e
}

/// A CloudTrail S3 log file body.
pub fn log_file(records: &[Value]) -> String {
    json!({"Records": records}).to_string()
}

/// An IAM user caller in another account.
pub fn iam_user_in(account: &str, name: &str) -> Value {
    json!({"type": "IAMUser", "principalId": "AIDAOTHER", "arn": format!("arn:aws:iam::{account}:user/{name}"),
           "accountId": account, "accessKeyId": format!("AKIA{}", name.to_uppercase()), "userName": name})
}

/// The root user.
pub fn root() -> Value {
    json!({"type": "Root", "principalId": ACCOUNT, "arn": format!("arn:aws:iam::{ACCOUNT}:root"), "accountId": ACCOUNT,
           "accessKeyId": "ASIAROOTCONSOLE"})
}

/// `GetSessionToken` by an IAM user (MFA-protected temporary credentials).
pub fn get_session_token(id: &str, time: &str, user: &str, key: &str) -> Value {
    let mut e = base(time, "sts.amazonaws.com", "GetSessionToken", iam_user(user), id);
    e["requestParameters"] =
        json!({"durationSeconds": 43200, "serialNumber": format!("arn:aws:iam::{ACCOUNT}:mfa/{user}")});
    e["responseElements"] =
        json!({"credentials": {"accessKeyId": key, "expiration": "May 2, 2024, 1:00:00 PM", "sessionToken": "token"}});
    e
}

/// `GetFederationToken` by an IAM user, issuing a federated user's credentials.
pub fn get_federation_token(id: &str, time: &str, user: &str, federated: &str, key: &str) -> Value {
    let mut e = base(time, "sts.amazonaws.com", "GetFederationToken", iam_user(user), id);
    e["requestParameters"] = json!({"name": federated, "durationSeconds": 3600});
    e["responseElements"] = json!({
        "credentials": {"accessKeyId": key, "expiration": "May 2, 2024, 3:00:00 AM", "sessionToken": "token"},
        "federatedUser": {"federatedUserId": format!("{ACCOUNT}:{federated}"),
                          "arn": format!("arn:aws:sts::{ACCOUNT}:federated-user/{federated}")}});
    e
}

/// A caller acting for an IAM Identity Center user (`onBehalfOf`).
pub fn identity_center_user(user_id: &str) -> Value {
    json!({"type": "IdentityCenterUser", "accountId": ACCOUNT, "credentialId": "cred-1",
           "onBehalfOf": {"userId": user_id, "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-1234567890"}})
}

/// IRSA: a pod's service-account token traded at the cluster's OIDC provider.
pub fn irsa(id: &str, time: &str, namespace: &str, service_account: &str, role: &str, key: &str) -> Value {
    let provider = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E";
    let subject = format!("system:serviceaccount:{namespace}:{service_account}");
    let caller = json!({"type": "WebIdentityUser", "principalId": format!("{provider}:sts.amazonaws.com:{subject}"),
                        "userName": subject, "identityProvider": provider});
    let mut e = base(time, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", caller, id);
    e["requestParameters"] = json!({"roleArn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                                    "roleSessionName": "botocore-session-1714611600"});
    e["responseElements"] = issued(role, "botocore-session-1714611600", key);
    e
}

/// EKS Pod Identity: the agent's `AssumeRoleForPodIdentity` on a pod's behalf.
pub fn pod_identity(id: &str, time: &str, cluster: &str, namespace: &str, service_account: &str, key: &str) -> Value {
    let caller = json!({"type": "AssumedRole", "principalId": "AROANODE:i-0abc", "accountId": ACCOUNT,
                        "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/eks-node-role/i-0abc"), "accessKeyId": "ASIANODE"});
    let mut e = base(time, "eks-auth.amazonaws.com", "AssumeRoleForPodIdentity", caller, id);
    e["requestParameters"] = json!({"clusterName": cluster, "token": "HIDDEN_DUE_TO_SECURITY_REASONS"});
    let session = format!("eks-{cluster}-{service_account}-0b6c1a9e");
    e["responseElements"] = json!({
        "credentials": {"accessKeyId": key, "expiration": 1_714_615_200, "sessionToken": "token"},
        "assumedRoleUser": {"assumeRoleId": format!("AROAPOD:{session}"),
                            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/app-role/{session}")},
        "subject": {"namespace": namespace, "serviceAccount": service_account},
        "podIdentityAssociation": {"associationArn": format!("arn:aws:eks:eu-west-1:{ACCOUNT}:podidentityassociation/{cluster}/a-1"),
                                   "associationId": "a-1"},
        "audience": "pods.eks.amazonaws.com"});
    e
}

/// Any API call by `caller`, with its request parameters, as CloudTrail records it.
pub fn call(id: &str, time: &str, source: &str, name: &str, caller: Value, params: Value) -> Value {
    let mut e = base(time, source, name, caller, id);
    e["requestParameters"] = params;
    e
}
