//! The human-readable form of `lakectl status`.

use super::{ComponentState, StatusReport};

/// The human-readable form.
pub fn render_text(report: &StatusReport) -> String {
    let mut out = String::new();
    match (report.stack.supervisor_pid, report.stack.started_at) {
        (Some(pid), Some(since)) => out.push_str(&format!(
            "stack: running (lakectl up pid {pid}, since {})\n",
            since.format("%Y-%m-%d %H:%M:%S UTC")
        )),
        _ => out.push_str("stack: not running (start it with `lakectl up`)\n"),
    }
    for (name, c) in &report.components {
        let state = match c.state {
            ComponentState::Running => "running",
            ComponentState::Stopped => "stopped",
            ComponentState::Unreachable => "UNREACHABLE",
            ComponentState::Restarting => "RESTARTING",
            ComponentState::Failed => "FAILED",
        };
        let origin = if c.managed { "local" } else { "external" };
        let pid = c.pid.map(|p| format!("pid {p}")).unwrap_or_default();
        let lag = c.lag.map(|l| format!("  (lag {l})")).unwrap_or_default();
        out.push_str(&format!(
            "  {name:<10} {state:<12} {origin:<9} {pid:<10} {}{lag}\n",
            c.endpoint
        ));
        let explained = matches!(
            c.state,
            ComponentState::Unreachable | ComponentState::Restarting | ComponentState::Failed
        );
        if let (true, Some(detail)) = (explained, &c.detail) {
            out.push_str(&format!("            {detail}\n"));
        }
        if let Some(restarts) = c.restarts.filter(|r| *r > 0) {
            out.push_str(&format!("            restarted {restarts} times\n"));
        }
        if let Some(n) = &c.counters {
            out.push_str(&format!(
                "            {} records in, {} out, {} dead letters since up\n",
                n.records_in, n.records_out, n.dead_letters
            ));
        }
    }
    for t in &report.topics {
        match (t.partitions, t.records) {
            (Some(p), Some(r)) => out.push_str(&format!(
                "  topic     {}: {p} partitions, {r} records\n",
                t.name
            )),
            _ => out.push_str(&format!("  topic     {}: unavailable\n", t.name)),
        }
    }
    if let Some(dlq) = &report.stream_sql_dlq {
        let held = match dlq.records {
            Some(n) => format!("{n} dead letters"),
            None => "no dead letters yet".to_string(),
        };
        out.push_str(&format!("  stream sql {held} (topic {})\n", dlq.name));
    }
    for t in &report.warehouse {
        let when = t.last_update.as_deref().unwrap_or("never");
        out.push_str(&format!(
            "  warehouse {}: {} rows, last update {when}\n",
            t.table, t.rows
        ));
    }
    if report.lake.is_empty() {
        out.push_str("  lake      empty\n");
    }
    for t in &report.lake {
        let newest = t.newest_date.map(|d| d.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "  lake      {}: {} rows in {} files ({} bytes), {} date partitions up to {newest}, {} dead letters\n",
            t.topic, t.rows, t.files, t.bytes, t.partitions, t.dead_letters
        ));
    }
    out
}
