//! The control socket's answers as text for people and as one-line JSON objects.

use std::fmt::Write as _;
use std::time::Duration;

use super::rates::Rates;
use super::report::{FailoverView, RefusalView, StatusReport, WorkerView};
use crate::tune::{Irqs, NicReport};

/// A JSON string literal of `s`.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// `{"name":N,…}`
fn json_counters(counters: &[(String, u64)]) -> String {
    let fields: Vec<String> = counters
        .iter()
        .map(|(n, v)| format!("{}:{v}", json_str(n)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn worker_json(w: &WorkerView) -> String {
    format!(
        "{{\"iface\":{},\"queue\":{},\"core\":{},\"rx\":{},\"tx\":{},\"dropped\":{},\"replies\":{}",
        json_str(&w.iface),
        w.queue,
        json_opt(w.core),
        w.rx,
        w.tx,
        w.dropped,
        w.replies
    )
}

/// `status --json`: one object, `{"datapath":"xdp","attach_mode":"native"|null,
/// "interfaces":[…],"shards":N,"bindings":N,"capacity":N,"workers":[{"iface":…,"queue":N,
/// "core":N|null,"rx":N,"tx":N,"dropped":N,"replies":N}],"xdp":{…},"engine":{…},
/// "socket":{…},"failover":[{"name":…,"role":…,"state":…,"state_since":N,…}]}`.
pub fn status_json(r: &StatusReport) -> String {
    let interfaces: Vec<String> = r.interfaces.iter().map(|i| json_str(i)).collect();
    let failover: Vec<String> = r.failover.iter().map(failover_json).collect();
    let workers: Vec<String> = r.workers.iter().map(|w| worker_json(w) + "}").collect();
    format!(
        "{{\"datapath\":{},\"attach_mode\":{},\"interfaces\":[{}],\"shards\":{},\
         \"bindings\":{},\"capacity\":{},\"workers\":[{}],\"xdp\":{},\"engine\":{},\
         \"socket\":{},\"failover\":[{}]}}\n",
        json_str(&r.datapath),
        r.attach_mode
            .as_deref()
            .map_or_else(|| "null".to_owned(), json_str),
        interfaces.join(","),
        r.shards,
        r.bindings,
        r.capacity,
        workers.join(","),
        json_counters(&r.xdp),
        json_counters(&r.engine),
        json_counters(&r.socket),
        failover.join(","),
    )
}

/// Left-aligned columns, two spaces apart, each row indented by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|&h| h.to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "  {cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn counters_text(counters: &[(String, u64)]) -> String {
    let fields: Vec<String> = counters.iter().map(|(n, v)| format!("{n}={v}")).collect();
    fields.join(" ")
}

fn core_text(core: Option<usize>) -> String {
    core.map_or_else(|| "-".to_owned(), |c| c.to_string())
}

/// `status` for people.
pub fn status_text(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = match &r.attach_mode {
        Some(mode) => writeln!(out, "datapath: {} ({mode} mode)", r.datapath),
        None => writeln!(out, "datapath: {}", r.datapath),
    };
    let _ = writeln!(out, "interfaces: {}", r.interfaces.join(", "));
    let _ = writeln!(
        out,
        "leases: {} binding(s) in {} shard(s), capacity {}",
        r.bindings, r.shards, r.capacity
    );
    if r.workers.is_empty() {
        let _ = writeln!(out, "workers: none");
    } else {
        let _ = writeln!(out, "workers: {}", r.workers.len());
        let rows: Vec<Vec<String>> = r
            .workers
            .iter()
            .map(|w| {
                vec![
                    w.iface.clone(),
                    w.queue.to_string(),
                    core_text(w.core),
                    w.rx.to_string(),
                    w.tx.to_string(),
                    w.dropped.to_string(),
                    w.replies.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["IFACE", "QUEUE", "CORE", "RX", "TX", "DROPPED", "REPLIES"],
            &rows,
        ));
    }
    for (title, counters) in [
        ("xdp", &r.xdp),
        ("engine", &r.engine),
        ("socket", &r.socket),
    ] {
        if !counters.is_empty() {
            let _ = writeln!(out, "{title}: {}", counters_text(counters));
        }
    }
    for f in &r.failover {
        failover_text(&mut out, f);
    }
    out
}

fn time_text(secs: Option<u64>) -> String {
    secs.map_or_else(|| "never".to_owned(), crate::timefmt::rfc3339)
}

/// One relationship of `status`, for people.
fn failover_text(out: &mut String, f: &FailoverView) {
    let _ = writeln!(out, "failover {}: {}", f.name, f.role);
    if let Some(p) = &f.problem {
        let _ = writeln!(out, "  PROBLEM: {p}");
    }
    let _ = writeln!(
        out,
        "  state: {}{} since {} (previous {})",
        f.state,
        if f.startup { " [STARTUP flag]" } else { "" },
        time_text(Some(f.state_since)),
        f.previous.as_deref().unwrap_or("-"),
    );
    let _ = writeln!(
        out,
        "  partner: {}{}{}",
        f.partner_state.as_deref().unwrap_or("unknown"),
        if f.partner_startup {
            " [STARTUP flag]"
        } else {
            ""
        },
        f.partner_since
            .map_or_else(String::new, |t| format!(" since {}", time_text(Some(t)))),
    );
    let _ = writeln!(
        out,
        "  link: {} ({}), {}{}",
        f.link,
        f.link_detail,
        f.security,
        f.tls_peer
            .as_deref()
            .map_or_else(String::new, |p| format!(", TLS peer {p}")),
    );
    let _ = writeln!(
        out,
        "  last contact: {}; skew: {} (max {} s); unacked BNDUPD: {}; MCLT: {} s",
        time_text(f.last_contact),
        f.skew.map_or_else(|| "-".to_owned(), |s| format!("{s} s")),
        f.max_abs_skew,
        f.unacked,
        f.mclt,
    );
    let _ = writeln!(
        out,
        "  binding updates: backlog {}; BNDUPD sent {}/s, received {}/s (last 10 s)",
        f.update_backlog, f.bndupd_sent_per_s, f.bndupd_received_per_s,
    );
    let _ = writeln!(
        out,
        "  update latency (commit → partner's ack, last 10 s): {}",
        if f.update_latency_count == 0 {
            "none acknowledged".to_owned()
        } else {
            format!(
                "p50 {} µs, p99 {} µs, max {} µs over {} updates",
                f.update_latency_p50_us,
                f.update_latency_p99_us,
                f.update_latency_max_us,
                f.update_latency_count
            )
        },
    );
    let _ = writeln!(out, "  policy: {}", f.policy);
    if let Some(r) = &f.last_refusal_received {
        let _ = writeln!(out, "  last refusal received: {}", refusal_text(r));
    }
    if let Some(r) = &f.last_refusal_sent {
        let _ = writeln!(out, "  last refusal sent: {}", refusal_text(r));
    }
    let _ = writeln!(out, "  counters: {}", counters_text(&f.counters));
}

/// `2026-12-01T10:00:00Z: ConfigurationConflict (17): "…"`.
fn refusal_text(r: &RefusalView) -> String {
    format!(
        "{}: {} ({}): {}",
        time_text(Some(r.at)),
        r.status,
        r.code,
        json_str(&r.text)
    )
}

/// `{"status":…,"code":…,"text":…,"at":…}`, or `null`.
fn refusal_json(r: Option<&RefusalView>) -> String {
    let Some(r) = r else {
        return "null".to_owned();
    };
    format!(
        "{{\"status\":{},\"code\":{},\"text\":{},\"at\":{}}}",
        json_str(&r.status),
        r.code,
        json_str(&r.text),
        r.at
    )
}

/// One relationship of `status --json`.
fn failover_json(f: &FailoverView) -> String {
    let opt_str = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), json_str);
    format!(
        "{{\"name\":{},\"role\":{},\"state\":{},\"state_since\":{},\"previous\":{},\
         \"startup\":{},\"partner_state\":{},\"partner_since\":{},\"partner_startup\":{},\
         \"link\":{},\"link_detail\":{},\"communications_ok\":{},\"security\":{},\
         \"tls_peer\":{},\"last_contact\":{},\"skew\":{},\"max_abs_skew\":{},\
         \"unacked\":{},\"update_backlog\":{},\"bndupd_sent_per_s\":{},\
         \"bndupd_received_per_s\":{},\"update_latency_count\":{},\
         \"update_latency_p50_us\":{},\"update_latency_p99_us\":{},\
         \"update_latency_max_us\":{},\"mclt\":{},\"policy\":{},\"problem\":{},\
         \"last_refusal_received\":{},\"last_refusal_sent\":{},\
         \"counters\":{}}}",
        json_str(&f.name),
        json_str(&f.role),
        json_str(&f.state),
        f.state_since,
        opt_str(f.previous.as_deref()),
        f.startup,
        opt_str(f.partner_state.as_deref()),
        json_opt(f.partner_since),
        f.partner_startup,
        json_str(&f.link),
        json_str(&f.link_detail),
        f.communications_ok,
        json_str(&f.security),
        opt_str(f.tls_peer.as_deref()),
        json_opt(f.last_contact),
        json_opt(f.skew),
        f.max_abs_skew,
        f.unacked,
        f.update_backlog,
        f.bndupd_sent_per_s,
        f.bndupd_received_per_s,
        f.update_latency_count,
        f.update_latency_p50_us,
        f.update_latency_p99_us,
        f.update_latency_max_us,
        f.mclt,
        json_str(&f.policy),
        opt_str(f.problem.as_deref()),
        refusal_json(f.last_refusal_received.as_ref()),
        refusal_json(f.last_refusal_sent.as_ref()),
        json_counters(&f.counters),
    )
}

/// What `tune show` prints.
pub(super) struct TuneShow<'a> {
    pub(super) datapath: &'a str,
    pub(super) workers: &'a [WorkerView],
    pub(super) interval: Option<Duration>,
    pub(super) rates: &'a [Option<Rates>],
    pub(super) nics: &'a [NicReport],
}

impl TuneShow<'_> {
    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        if self.workers.is_empty() {
            let _ = writeln!(
                out,
                "workers: none ({} datapath: one thread serves every interface)",
                self.datapath
            );
        } else {
            let _ = match self.interval {
                Some(d) => writeln!(
                    out,
                    "workers ({} datapath; rates over the last {:.1} s):",
                    self.datapath,
                    d.as_secs_f64()
                ),
                None => writeln!(
                    out,
                    "workers ({} datapath; rates not measured yet, ask again in a second):",
                    self.datapath
                ),
            };
            let rate = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"));
            let rows: Vec<Vec<String>> = self
                .workers
                .iter()
                .zip(self.rates.iter().chain(std::iter::repeat(&None)))
                .map(|(w, r)| {
                    vec![
                        w.iface.clone(),
                        w.queue.to_string(),
                        core_text(w.core),
                        rate(r.map(|r| r.rx)),
                        rate(r.map(|r| r.tx)),
                    ]
                })
                .collect();
            out.push_str(&table(&["IFACE", "QUEUE", "CORE", "RX/S", "TX/S"], &rows));
        }
        for nic in self.nics {
            let queues = match &nic.rx_queues {
                Ok(q) => format!("{} RX queue(s)", q.len()),
                Err(e) => e.clone(),
            };
            let _ = write!(out, "interface {}: {queues}; ", nic.iface);
            match &nic.irqs {
                Irqs::Virtual => out.push_str("no IRQs (virtual device)\n"),
                Irqs::NotFound => {
                    out.push_str("no IRQs of its queues found in /proc/interrupts\n");
                }
                Irqs::Unreadable(e) => {
                    let _ = writeln!(out, "IRQs unknown ({e})");
                }
                Irqs::Found(irqs) => {
                    let _ = writeln!(out, "{} IRQ(s):", irqs.len());
                    let rows: Vec<Vec<String>> = irqs
                        .iter()
                        .map(|i| {
                            vec![
                                i.irq.to_string(),
                                i.affinity.clone().unwrap_or_else(|| "?".to_owned()),
                                i.name.clone(),
                            ]
                        })
                        .collect();
                    out.push_str(&table(&["IRQ", "CPUS", "NAME"], &rows));
                }
            }
        }
        out
    }

    pub(super) fn json(&self) -> String {
        let rate = |r: Option<f64>| r.map_or_else(|| "null".to_owned(), |r| format!("{r:.1}"));
        let workers: Vec<String> = self
            .workers
            .iter()
            .zip(self.rates.iter().chain(std::iter::repeat(&None)))
            .map(|(w, r)| {
                format!(
                    "{},\"rx_pps\":{},\"tx_pps\":{}}}",
                    worker_json(w),
                    rate(r.map(|r| r.rx)),
                    rate(r.map(|r| r.tx))
                )
            })
            .collect();
        let nics: Vec<String> = self
            .nics
            .iter()
            .map(|nic| {
                let (queues, queues_error) = match &nic.rx_queues {
                    Ok(q) => {
                        let q: Vec<String> = q.iter().map(u32::to_string).collect();
                        (format!("[{}]", q.join(",")), "null".to_owned())
                    }
                    Err(e) => ("null".to_owned(), json_str(e)),
                };
                let (state, irqs) = match &nic.irqs {
                    Irqs::Virtual => ("\"virtual\"".to_owned(), String::new()),
                    Irqs::NotFound => ("\"not_found\"".to_owned(), String::new()),
                    Irqs::Unreadable(e) => (json_str(e), String::new()),
                    Irqs::Found(irqs) => {
                        let list: Vec<String> = irqs
                            .iter()
                            .map(|i| {
                                format!(
                                    "{{\"irq\":{},\"name\":{},\"affinity\":{}}}",
                                    i.irq,
                                    json_str(&i.name),
                                    i.affinity
                                        .as_deref()
                                        .map_or_else(|| "null".to_owned(), json_str)
                                )
                            })
                            .collect();
                        ("\"found\"".to_owned(), list.join(","))
                    }
                };
                format!(
                    "{{\"name\":{},\"rx_queues\":{queues},\"rx_queues_error\":{queues_error},\
                     \"irq_status\":{state},\"irqs\":[{irqs}]}}",
                    json_str(&nic.iface)
                )
            })
            .collect();
        format!(
            "{{\"datapath\":{},\"rate_interval_s\":{},\"workers\":[{}],\"interfaces\":[{}]}}\n",
            json_str(self.datapath),
            self.interval
                .map_or_else(|| "null".to_owned(), |d| format!("{:.3}", d.as_secs_f64())),
            workers.join(","),
            nics.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_text_and_json_show_a_failover_relationship() {
        let f = FailoverView {
            name: "dc".into(),
            role: "secondary".into(),
            state: "NORMAL".into(),
            state_since: 1_796_000_000,
            previous: Some("RECOVER-DONE".into()),
            partner_state: Some("NORMAL".into()),
            partner_since: Some(1_796_000_000),
            link: "up".into(),
            link_detail: "established".into(),
            communications_ok: true,
            security: "tls".into(),
            tls_peer: Some("dc1.example (CN=dc1.example DNS:dc1.example; TLSv1_3)".into()),
            last_contact: Some(1_796_000_100),
            skew: Some(0),
            mclt: 3600,
            policy: "renew responsive".into(),
            counters: vec![("close_tls_error".into(), 2)],
            update_backlog: 7,
            bndupd_sent_per_s: 1200,
            bndupd_received_per_s: 3,
            update_latency_count: 11_900,
            update_latency_p50_us: 1_250,
            update_latency_p99_us: 4_700,
            update_latency_max_us: 9_100,
            ..FailoverView::default()
        };
        let r = StatusReport {
            failover: vec![f],
            ..StatusReport::default()
        };
        let text = status_text(&r);
        assert!(
            text.contains("failover dc: secondary\n  state: NORMAL since 2026-"),
            "{text}"
        );
        assert!(text.contains("(previous RECOVER-DONE)"), "{text}");
        assert!(
            text.contains("  link: up (established), tls, TLS peer dc1.example (CN="),
            "{text}"
        );
        assert!(text.contains("unacked BNDUPD: 0; MCLT: 3600 s"), "{text}");
        assert!(
            text.contains("binding updates: backlog 7; BNDUPD sent 1200/s, received 3/s"),
            "{text}"
        );
        assert!(
            text.contains(
                "  update latency (commit → partner's ack, last 10 s): p50 1250 µs, p99 4700 µs, \
                 max 9100 µs over 11900 updates\n"
            ),
            "{text}"
        );
        assert!(text.contains("  counters: close_tls_error=2\n"), "{text}");
        let json = status_json(&r);
        assert!(
            json.contains(
                "\"failover\":[{\"name\":\"dc\",\"role\":\"secondary\",\"state\":\"NORMAL\",\
                 \"state_since\":1796000000,\"previous\":\"RECOVER-DONE\",\"startup\":false,"
            ),
            "{json}"
        );
        assert!(
            json.ends_with("\"counters\":{\"close_tls_error\":2}}]}\n"),
            "{json}"
        );
        assert!(
            json.contains(
                "\"unacked\":0,\"update_backlog\":7,\"bndupd_sent_per_s\":1200,\
                 \"bndupd_received_per_s\":3,\"update_latency_count\":11900,\
                 \"update_latency_p50_us\":1250,\"update_latency_p99_us\":4700,\
                 \"update_latency_max_us\":9100,\"mclt\":3600,"
            ),
            "{json}"
        );
    }

    #[test]
    fn status_shows_the_problem_first_and_the_last_refusal_in_text_and_json() {
        let problem = "both servers are configured as primary for relationship \"dc\" (…)";
        let f = FailoverView {
            name: "dc".into(),
            role: "primary".into(),
            state: "RECOVER".into(),
            problem: Some(problem.into()),
            last_refusal_received: Some(RefusalView {
                status: "ConfigurationConflict".into(),
                code: 17,
                text: "both servers are configured as primary for relationship \"dc\"".into(),
                at: 1_796_000_000,
            }),
            counters: vec![("role_conflict".into(), 1)],
            ..FailoverView::default()
        };
        let r = StatusReport {
            failover: vec![f],
            ..StatusReport::default()
        };
        let text = status_text(&r);
        assert!(
            text.contains(&format!(
                "failover dc: primary\n  PROBLEM: {problem}\n  state: RECOVER"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "  last refusal received: 2026-11-30T00:53:20Z: ConfigurationConflict (17): \
                 \"both servers are configured as primary for relationship \\\"dc\\\"\"\n"
            ),
            "{text}"
        );
        let json = status_json(&r);
        assert!(
            json.contains(
                "\"problem\":\"both servers are configured as primary for relationship \\\"dc\\\" \
                 (…)\",\"last_refusal_received\":{\
                 \"status\":\"ConfigurationConflict\",\"code\":17,\"text\":\"both servers are \
                 configured as primary for relationship \\\"dc\\\"\",\"at\":1796000000},\
                 \"last_refusal_sent\":null,\"counters\":{\"role_conflict\":1}}"
            ),
            "{json}"
        );
        // One sent too: its own line, after the one received.
        let mut f = r.failover[0].clone();
        f.last_refusal_sent = Some(RefusalView {
            status: "ConfigurationConflict".into(),
            code: 17,
            text: "both servers are configured as primary for relationship \"dc\"".into(),
            at: 1_796_000_001,
        });
        let r = StatusReport {
            failover: vec![f],
            ..StatusReport::default()
        };
        let text = status_text(&r);
        assert!(
            text.contains(
                "\"\n  last refusal sent: 2026-11-30T00:53:21Z: ConfigurationConflict (17): \
                 \"both servers"
            ),
            "{text}"
        );
        assert!(
            status_json(&r).contains(
                "\"last_refusal_sent\":{\"status\":\"ConfigurationConflict\",\"code\":17,"
            ),
            "{}",
            status_json(&r)
        );
        // Nothing wrong: no PROBLEM line, no refusal line; JSON nulls.
        let r = StatusReport {
            failover: vec![FailoverView::default()],
            ..StatusReport::default()
        };
        assert!(!status_text(&r).contains("PROBLEM"));
        assert!(!status_text(&r).contains("last refusal"));
        assert!(
            status_json(&r).contains(
                "\"problem\":null,\"last_refusal_received\":null,\"last_refusal_sent\":null,\
                 \"counters\""
            ),
            "{}",
            status_json(&r)
        );
    }

    use super::*;

    #[test]
    fn json_strings_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
