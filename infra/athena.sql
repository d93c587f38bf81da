-- Ingress Sentinel in Amazon Athena: tables over the daily DynamoDB exports
-- of the alerts and history tables, and the queries compliance asks for.
--
-- The stack exports both tables every day (ExportTableToPointInTime,
-- DYNAMODB_JSON) into its evidence bucket:
--
--   s3://BUCKET/exports/alerts/AWSDynamoDB/<export id>/data/*.json.gz
--   s3://BUCKET/exports/history/AWSDynamoDB/<export id>/data/*.json.gz
--
-- one line per item, `{"Item": {"alert_id": {"S": "..."}, ...}}`. Replace
-- BUCKET with the stack's EvidenceBucketName output. Export ids begin with
-- the export time in milliseconds, so the greatest id is the latest export;
-- the two views read that one only. The manifests beside the data
-- (manifest-*.json, *.md5, _started) hold no `Item` and are skipped.
--
-- Beside `doc` (the full alert or revision, as written), each item carries
-- flat copies of what reports filter on: those are the columns here.

CREATE EXTERNAL TABLE IF NOT EXISTS sentinel_alerts_exports (
  Item struct<
    alert_id: struct<S: string>,
    revision: struct<N: string>,
    severity: struct<S: string>,
    status: struct<S: string>,
    cluster: struct<S: string>,
    title: struct<S: string>,
    first_seen: struct<S: string>,
    last_seen: struct<S: string>,
    actor_key: struct<S: string>,
    identity_status: struct<S: string>,
    originating_principal: struct<S: string>,
    approved: struct<`BOOL`: boolean>,
    rules: struct<SS: array<string>>,
    namespaces: struct<SS: array<string>>
  >
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://BUCKET/exports/alerts/AWSDynamoDB/';

CREATE EXTERNAL TABLE IF NOT EXISTS sentinel_history_exports (
  Item struct<
    alert_id: struct<S: string>,
    revision: struct<N: string>,
    revised_for: struct<S: string>,
    status: struct<S: string>,
    from_status: struct<S: string>,
    changed_by: struct<S: string>,
    reason: struct<S: string>,
    severity: struct<S: string>,
    title: struct<S: string>,
    recorded_at: struct<S: string>
  >
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
LOCATION 's3://BUCKET/exports/history/AWSDynamoDB/';

-- Every alert at its latest revision, from the latest export.
CREATE OR REPLACE VIEW sentinel_alerts AS
WITH latest AS (
  SELECT max(regexp_extract("$path", 'AWSDynamoDB/([^/]+)/data/', 1)) AS export_id
  FROM sentinel_alerts_exports
  WHERE "$path" LIKE '%/data/%'
)
SELECT
  Item.alert_id.S AS alert_id,
  CAST(Item.revision.N AS integer) AS revision,
  Item.severity.S AS severity,
  coalesce(Item.status.S, 'open') AS status,
  Item.cluster.S AS cluster,
  Item.title.S AS title,
  from_iso8601_timestamp(Item.first_seen.S) AS first_seen,
  from_iso8601_timestamp(Item.last_seen.S) AS last_seen,
  Item.actor_key.S AS actor_key,
  Item.identity_status.S AS identity_status,
  Item.originating_principal.S AS originating_principal,
  coalesce(Item.approved.`BOOL`, false) AS approved,
  coalesce(Item.rules.SS, ARRAY[]) AS rules,
  coalesce(Item.namespaces.SS, ARRAY[]) AS namespaces
FROM sentinel_alerts_exports CROSS JOIN latest
WHERE regexp_extract("$path", 'AWSDynamoDB/([^/]+)/data/', 1) = latest.export_id
  AND Item.alert_id.S IS NOT NULL;

-- Every revision and status change, from the latest export.
CREATE OR REPLACE VIEW sentinel_history AS
WITH latest AS (
  SELECT max(regexp_extract("$path", 'AWSDynamoDB/([^/]+)/data/', 1)) AS export_id
  FROM sentinel_history_exports
  WHERE "$path" LIKE '%/data/%'
)
SELECT
  Item.alert_id.S AS alert_id,
  CAST(Item.revision.N AS integer) AS revision,
  Item.revised_for.S AS revised_for,
  Item.status.S AS status,
  Item.from_status.S AS from_status,
  Item.changed_by.S AS changed_by,
  Item.reason.S AS reason,
  Item.severity.S AS severity,
  Item.title.S AS title,
  from_iso8601_timestamp(Item.recorded_at.S) AS recorded_at
FROM sentinel_history_exports CROSS JOIN latest
WHERE regexp_extract("$path", 'AWSDynamoDB/([^/]+)/data/', 1) = latest.export_id
  AND Item.alert_id.S IS NOT NULL;

-- 1. Alerts by person, last 90 days. A person is named only where the
--    identity chain reached one; the rest are counted as unresolved.
SELECT coalesce(originating_principal, 'unresolved') AS person,
       count(*) AS alerts,
       count_if(severity IN ('high', 'critical')) AS high_or_critical,
       count_if(NOT approved) AS unapproved
FROM sentinel_alerts
WHERE first_seen >= current_timestamp - INTERVAL '90' DAY
GROUP BY 1
ORDER BY alerts DESC;

-- 2. Unresolved identities: alerts whose IAM session never led to a person.
SELECT alert_id, severity, status, identity_status, actor_key, cluster, first_seen, title
FROM sentinel_alerts
WHERE identity_status IN ('session_only', 'pending', 'unresolved', 'inferred')
ORDER BY first_seen DESC;

-- 3. Changes outside every maintenance window.
SELECT alert_id, severity, status, coalesce(originating_principal, actor_key) AS who,
       namespaces, first_seen, title
FROM sentinel_alerts
WHERE contains(rules, 'change.out-of-window')
ORDER BY first_seen DESC;

-- 4. Alerts per namespace and severity.
SELECT namespace, severity, count(*) AS alerts
FROM sentinel_alerts CROSS JOIN UNNEST(namespaces) AS t (namespace)
GROUP BY namespace, severity
ORDER BY alerts DESC, namespace;

-- 5. Time to acknowledge: from the first signal to the first status change
--    away from open, per severity (median and 90th percentile, in hours).
WITH acknowledged AS (
  SELECT a.alert_id, a.severity, a.first_seen, min(h.recorded_at) AS acknowledged_at
  FROM sentinel_alerts a
  JOIN sentinel_history h ON h.alert_id = a.alert_id
  WHERE h.revised_for = 'status' AND h.status <> 'open'
  GROUP BY a.alert_id, a.severity, a.first_seen
)
SELECT severity,
       count(*) AS alerts,
       approx_percentile(date_diff('second', first_seen, acknowledged_at) / 3600.0, 0.5) AS median_hours,
       approx_percentile(date_diff('second', first_seen, acknowledged_at) / 3600.0, 0.9) AS p90_hours
FROM acknowledged
GROUP BY severity
ORDER BY severity;
