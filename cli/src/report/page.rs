//! `index.html`: one self-contained page. No script and no request: the
//! charts are inline SVG, the styles inline, and a Content-Security-Policy
//! that allows nothing else. Every string that came from a cluster (names,
//! annotations, actors, reasons) is escaped for HTML after its control
//! characters are made visible.

use std::fmt::Write as _;

use sentinel_core::alert::Alert;
use sentinel_core::text::escape;

use super::model::{Count, Data, Summary};

/// HTML-escapes text (after making control characters visible).
pub fn html(s: &str) -> String {
    let visible = escape(s);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const COLORS: [(&str, &str); 4] =
    [("low", "#8fb3d9"), ("medium", "#e8c04a"), ("high", "#e8843a"), ("critical", "#c8312f")];

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}\
.card b{display:block;font-size:1.6em}table{border-collapse:collapse;width:100%;margin:.5em 0}\
td,th{border-bottom:1px solid #eee;padding:.25em .5em;text-align:left;vertical-align:top}\
.sev-critical{color:#c8312f;font-weight:bold}.sev-high{color:#c05a10}.sev-medium{color:#8a6d00}\
details summary{cursor:pointer}svg text{font:11px system-ui,sans-serif}code{font-size:.95em}";

/// A horizontal bar chart of counts.
fn bars(id: &str, rows: &[(String, usize)]) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let height = 22 * rows.len().max(1) + 4;
    let mut svg = format!(
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" width=\"760\" height=\"{height}\" viewBox=\"0 0 760 {height}\" data-bars=\"{}\">",
        rows.len()
    );
    for (i, (label, n)) in rows.iter().enumerate() {
        let y = 4 + i * 22;
        let w = 480 * n / max;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect class=\"bar\" x=\"260\" y=\"{y}\" width=\"{w}\" height=\"16\" fill=\"#5b7fb0\" data-label=\"{}\" data-count=\"{n}\"><title>{}: {n}</title></rect><text x=\"{}\" y=\"{}\">{n}</text>",
            y + 12,
            html(&shorten(label, 40)),
            html(label),
            html(label),
            264 + w,
            y + 12
        );
    }
    svg.push_str("</svg>");
    svg
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

/// Alerts per week, stacked by severity.
fn weekly(summary: &Summary) -> String {
    let weeks = &summary.per_week;
    let max = weeks.iter().map(|w| w.low + w.medium + w.high + w.critical).max().unwrap_or(0).max(1);
    let width = 60 + 48 * weeks.len().max(1);
    let mut svg = format!(
        "<svg id=\"per-week\" class=\"chart\" role=\"img\" width=\"{width}\" height=\"240\" viewBox=\"0 0 {width} 240\" data-weeks=\"{}\">",
        weeks.len()
    );
    for (i, w) in weeks.iter().enumerate() {
        let x = 40 + i * 48;
        let mut y = 200;
        for (severity, count) in [("low", w.low), ("medium", w.medium), ("high", w.high), ("critical", w.critical)] {
            if count == 0 {
                continue;
            }
            let h = 180 * count / max;
            y -= h;
            let color = COLORS.iter().find(|c| c.0 == severity).map_or("#999", |c| c.1);
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{x}\" y=\"{y}\" width=\"36\" height=\"{h}\" fill=\"{color}\" data-week=\"{}\" data-severity=\"{severity}\" data-count=\"{count}\"><title>{} {severity}: {count}</title></rect>",
                html(&w.week),
                html(&w.week)
            );
        }
        let _ = write!(svg, "<text x=\"{x}\" y=\"220\">{}</text>", html(w.week.split('-').nth(1).unwrap_or(&w.week)));
    }
    let mut legend = 40;
    for (severity, color) in COLORS {
        let _ = write!(
            svg,
            "<rect x=\"{legend}\" y=\"228\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"237\">{severity}</text>",
            legend + 14
        );
        legend += 80;
    }
    svg.push_str("</svg>");
    svg
}

fn counts(rows: &[Count]) -> Vec<(String, usize)> {
    rows.iter().map(|c| (c.name.clone(), c.alerts)).collect()
}

fn timeline(alert: &Alert, data: &Data) -> String {
    let mut out = String::from(
        "<table><tr><th>revision</th><th>recorded</th><th>what</th><th>severity</th><th>status</th><th>detail</th></tr>",
    );
    for r in data.revisions.get(&alert.alert_id).into_iter().flatten() {
        let detail = match &r.status_change {
            Some(c) => format!(
                "{} → {} by {}{}: {}",
                c.from.as_str(),
                c.status.as_str(),
                html(&c.by),
                c.on_behalf_of.as_deref().map(|n| format!(" (as {})", html(n))).unwrap_or_default(),
                html(&c.reason)
            ),
            None => r
                .signals_added
                .iter()
                .map(|s| format!("<code>{}</code> {}", s.rule, html(&s.summary)))
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"sev-{}\">{}</td><td>{}</td><td>{detail}</td></tr>",
            r.revision,
            r.recorded_at.format("%Y-%m-%d %H:%M"),
            r.revised_for.as_str(),
            r.severity,
            r.severity,
            r.status.as_str()
        );
    }
    out.push_str("</table>");
    out
}

/// The page.
pub fn render(summary: &Summary, data: &Data) -> String {
    let mut p = String::new();
    let _ = write!(
        p,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>Ingress Sentinel report</title><style>{STYLE}</style></head><body>\
<h1>Ingress Sentinel report</h1><p>Generated {}{}. Every alert, its revisions and status changes, from the alerts table's export.</p>",
        summary.generated_at.format("%Y-%m-%d %H:%M UTC"),
        match (summary.from, summary.to) {
            (None, None) => String::new(),
            (f, t) => format!(
                "; alerts first seen from {} to {}",
                f.map_or("the start".to_owned(), |f| f.format("%Y-%m-%d").to_string()),
                t.map_or("now".to_owned(), |t| t.format("%Y-%m-%d").to_string())
            ),
        }
    );
    p.push_str("<div class=\"cards\" id=\"totals\">");
    let card = |label: &str, value: String| format!("<div class=\"card\"><b>{value}</b>{label}</div>");
    p.push_str(&card("alerts", summary.alerts.to_string()));
    p.push_str(&card("signals", summary.signals.to_string()));
    for s in ["critical", "high"] {
        p.push_str(&card(s, summary.by_severity.get(s).copied().unwrap_or(0).to_string()));
    }
    let open = summary.by_status.get("open").copied().unwrap_or(0)
        + summary.by_status.get("acknowledged").copied().unwrap_or(0);
    p.push_str(&card("open or acknowledged", open.to_string()));
    p.push_str(&card(
        "identities resolved",
        summary.identity_resolution_rate.map_or_else(|| "n/a".into(), |r| format!("{:.0}%", r * 100.0)),
    ));
    p.push_str("</div>");
    p.push_str("<h2>Alerts per week, by severity</h2>");
    p.push_str(&weekly(summary));
    p.push_str("<h2>By rule (signals)</h2>");
    let rules: Vec<(String, usize)> = summary.by_rule.iter().map(|r| (r.rule.clone(), r.signals)).collect();
    p.push_str(&bars("by-rule", &rules));
    p.push_str("<h2>Top originating principals</h2>");
    p.push_str(&bars("top-principals", &counts(&summary.top_principals)));
    p.push_str("<h2>Top namespaces</h2>");
    p.push_str(&bars("top-namespaces", &counts(&summary.top_namespaces)));
    p.push_str("<h2>Top objects</h2>");
    p.push_str(&bars("top-objects", &counts(&summary.top_objects)));
    p.push_str("<h2>Changes under a plan, and without</h2>");
    p.push_str(&bars(
        "approved",
        &[("under a registered plan".into(), summary.approved), ("no plan".into(), summary.unapproved)],
    ));
    p.push_str("<h2>Identity resolution</h2>");
    let identity: Vec<(String, usize)> = summary.by_identity.iter().map(|(k, v)| (k.clone(), *v)).collect();
    p.push_str(&bars("identity", &identity));
    p.push_str("<h2>Time to acknowledge and to resolve</h2><table id=\"times\"><tr><th></th><th>alerts</th><th>median (h)</th><th>90th percentile (h)</th></tr>");
    for (label, d) in [("acknowledge", &summary.time_to_acknowledge), ("resolve", &summary.time_to_resolve)] {
        let f = |v: Option<f64>| v.map_or_else(|| "–".into(), |v| format!("{v:.1}"));
        let _ = write!(
            p,
            "<tr><td>{label}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.count,
            f(d.median_hours),
            f(d.p90_hours)
        );
    }
    p.push_str("</table>");
    let _ = write!(
        p,
        "<h2>Open alerts older than {} days</h2><table id=\"stale\"><tr><th>alert</th><th>severity</th><th>status</th><th>first seen</th><th>age (days)</th><th>title</th></tr>",
        summary.stale_days
    );
    for s in &summary.stale_open {
        let _ = write!(
            p,
            "<tr><td><a href=\"#{}\">{}</a></td><td class=\"sev-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&s.alert_id),
            html(&s.alert_id),
            s.severity,
            s.severity,
            s.status.as_str(),
            s.first_seen.format("%Y-%m-%d"),
            s.age_days,
            html(&s.title)
        );
    }
    p.push_str("</table><h2>Every alert</h2><table id=\"alerts\"><tr><th>alert</th><th>severity</th><th>status</th><th>first seen</th><th>actor</th><th>identity</th><th>what</th></tr>");
    let mut alerts: Vec<&Alert> = data.alerts.values().collect();
    alerts.sort_by(|a, b| b.first_seen.cmp(&a.first_seen).then_with(|| a.alert_id.cmp(&b.alert_id)));
    for a in alerts {
        let _ = write!(
            p,
            "<tr id=\"{}\"><td>{}<br>rev {}</td><td class=\"sev-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><details><summary>{}</summary>{}</details></td></tr>",
            html(&a.alert_id),
            html(&a.alert_id),
            a.revision,
            a.severity,
            a.severity,
            a.status.as_str(),
            a.first_seen.format("%Y-%m-%d %H:%M"),
            html(a.actor.display()),
            a.identity_status.as_str(),
            html(&a.title),
            timeline(a, data)
        );
    }
    p.push_str("</table>");
    if !data.problems.is_empty() {
        p.push_str("<h2>What could not be read</h2><ul>");
        for problem in &data.problems {
            let _ = write!(p, "<li>{}</li>", html(problem));
        }
        p.push_str("</ul>");
    }
    p.push_str("</body></html>\n");
    p
}
