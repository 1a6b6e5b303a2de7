//! The names of the counters, shared by the `COUNTERS` line that `tandem run` prints when it
//! stops and by the control socket's `status`.

use std::fmt::Write as _;

use tandem_datapath::udp::SocketCounters;
use tandem_proto::Counters;
use tandem_wire::dhcp::MessageType;

/// The engine counters as `status` lists them: `rx_<type>` for the client message types
/// (and any other type seen), `tx_advertise`, `tx_reply`, `drop_<reason>`, then the lease
/// events — the names of the `COUNTERS` line of `tandem run`.
pub fn engine_counters(c: &Counters) -> Vec<(String, u64)> {
    const CLIENT_TYPES: [MessageType; 9] = [
        MessageType::SOLICIT,
        MessageType::REQUEST,
        MessageType::CONFIRM,
        MessageType::RENEW,
        MessageType::REBIND,
        MessageType::RELEASE,
        MessageType::DECLINE,
        MessageType::INFORMATION_REQUEST,
        MessageType::RELAY_FORW,
    ];
    let name = |t: MessageType| {
        t.name()
            .map_or_else(|| format!("type{}", t.0), str::to_ascii_lowercase)
    };
    let mut out = Vec::new();
    for t in (0..=u8::MAX).map(MessageType) {
        if CLIENT_TYPES.contains(&t) || c.received(t) != 0 {
            out.push((format!("rx_{}", name(t)), c.received(t)));
        }
    }
    for t in [MessageType::ADVERTISE, MessageType::REPLY] {
        out.push((format!("tx_{}", name(t)), c.replies(t)));
    }
    for (reason, n) in c.drop_counts() {
        out.push((format!("drop_{}", reason.name()), n));
    }
    for (event, n) in [
        ("committed", c.committed),
        ("released", c.released),
        ("declined", c.declined),
        ("expired", c.expired),
        ("unquarantined", c.unquarantined),
        ("store_errors", c.store_errors),
    ] {
        out.push((event.to_owned(), n));
    }
    out
}

/// The socket layer's drop counters, named as in the `COUNTERS` line.
pub fn socket_counters(s: &SocketCounters) -> Vec<(String, u64)> {
    vec![
        ("drop_unknown_interface".to_owned(), s.unknown_interface),
        ("drop_no_pktinfo".to_owned(), s.no_pktinfo),
        ("drop_truncated".to_owned(), s.truncated),
    ]
}

/// The XDP program's counters, named `xdp_<name>` as in the `COUNTERS` line.
pub fn xdp_counters(c: &tandem_datapath::xdp::Counters) -> Vec<(String, u64)> {
    c.iter().map(|(n, v)| (format!("xdp_{n}"), v)).collect()
}

/// The engine's part of a `COUNTERS` line, each field preceded by a space: the message
/// counters (`rx_<type>`, `tx_advertise`, `tx_reply`, `drop_<reason>`), then the lease events
/// (`committed` … `store_errors`).
pub fn engine_fields(c: &Counters) -> (String, String) {
    let all = engine_counters(c);
    let events = all
        .iter()
        .position(|(name, _)| name == "committed")
        .unwrap_or(all.len());
    let (messages, events) = all.split_at(events);
    let join = |fields: &[(String, u64)]| {
        fields.iter().fold(String::new(), |mut line, (name, n)| {
            let _ = write!(line, " {name}={n}");
            line
        })
    };
    (join(messages), join(events))
}
