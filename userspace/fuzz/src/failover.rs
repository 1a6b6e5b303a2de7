//! The `failover_pair` fuzz target: two RFC 8156 endpoints (primary and secondary) driven by
//! arbitrary operations — deliver, drop, mutate or inject frames, connect, close, advance
//! either clock, restart either side from its last durable record, operator PARTNER-DOWN.
//!
//! Checked after every operation: nothing panics; a side never sends a frame while a state
//! record it produced is not yet durable (RFC 8156 §8.1: persist before announcing); the two
//! sides are never both in PARTNER-DOWN unless an operator put one there (auto-partner-down is
//! configured on the secondary only); and the policies never
//! let both allocate from the same addresses (primary odd, secondary even, RFC 8156 §4.2.1.1).

use tandem_failover::{
    BindingInput, Config, Endpoint, Event, Now, Operator, Persisted, Role, StateName, Transmit,
};
use tandem_lease::AddressShare;
use tandem_wire::dhcp::StatusCode;
use tandem_wire::failover::FailoverTime;

/// Reads the fuzzer's bytes as small numbers; zeros once they run out.
#[derive(Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
}

/// One side of the pair.
#[derive(Debug)]
struct Side {
    role: Role,
    ep: Endpoint,
    /// The last record made durable (what a restart finds).
    durable: Option<Persisted>,
    /// Frames sent towards the partner, not delivered yet (framed, length prefix included).
    wire: Vec<Vec<u8>>,
    connected: bool,
    operator_down: bool,
    skew: u32,
    /// The time of the last input (what the driver passes when it answers in `drain`).
    last: Now,
}

impl Side {
    fn new(role: Role, now: Now) -> Self {
        Self {
            role,
            ep: endpoint(role, None, now),
            durable: None,
            wire: Vec::new(),
            connected: false,
            operator_down: false,
            skew: 0,
            last: now,
        }
    }

    /// Drains the endpoint in the documented order: persist (and confirm), transmit, events.
    fn drain(&mut self) {
        for _ in 0..256 {
            let mut progress = false;
            while let Some(p) = self.ep.poll_persist() {
                self.durable = Some(p);
                self.ep.handle_persisted();
                progress = true;
            }
            while let Some(t) = self.ep.poll_transmit() {
                progress = true;
                match t {
                    Transmit::Frame(f) => {
                        assert!(
                            self.ep.poll_persist().is_none(),
                            "a frame went out while a state record was not durable"
                        );
                        if self.connected {
                            self.wire.push(f);
                        }
                    }
                    Transmit::Close { .. } => {
                        self.connected = false;
                    }
                }
            }
            while let Some(e) = self.ep.poll_event() {
                progress = true;
                if let Event::UpdateRequested { .. } = e {
                    // This driver holds no bindings: everything asked for (nothing) is sent.
                    self.ep.update_stream_complete(self.last);
                }
            }
            while let Some(b) = self.ep.poll_binding() {
                progress = true;
                if let BindingInput::Update { conn, xid, .. } = b {
                    self.ep
                        .refuse_bndupd(self.last, conn, xid, StatusCode::UNSPEC_FAIL, "fuzz");
                }
            }
            if !progress {
                return;
            }
        }
    }
}

fn endpoint(role: Role, persisted: Option<Persisted>, now: Now) -> Endpoint {
    let mut c = Config::new(role, "fuzz");
    c.mclt = 30;
    c.startup_secs = 5;
    // Auto-partner-down on one side only: on both, a partition legitimately ends with both in
    // PARTNER-DOWN (that is what configuring it on both means; it is off by default).
    c.auto_partner_down = (role == Role::Secondary).then_some(20);
    // Config::new's values are valid, and a restart passes back a record this endpoint made.
    Endpoint::new(c.clone(), persisted, now)
        .unwrap_or_else(|_| Endpoint::new(c, None, now).expect("default config is valid"))
}

/// The message body of a framed message (without the 2-octet RFC 5460 length).
fn body(frame: &[u8]) -> &[u8] {
    frame.get(2..).unwrap_or_default()
}

/// Runs one fuzz input; returns both sides' final states (primary, secondary).
pub fn run(data: &[u8]) -> [StateName; 2] {
    let mut input = Bytes(data);
    let mut mono: u64 = 1_000;
    let base = 800_000_000u32;
    let now = |mono: u64, skew: u32| Now {
        mono_ms: mono,
        wall: FailoverTime(
            base.wrapping_add(u32::try_from(mono / 1000).unwrap_or(0))
                .wrapping_add(skew),
        ),
    };
    let mut sides = [
        Side::new(Role::Primary, now(mono, 0)),
        Side::new(Role::Secondary, now(mono, 0)),
    ];
    for _ in 0..512 {
        if input.0.is_empty() {
            break;
        }
        let op = input.u8();
        let who = usize::from(op & 1);
        let other = 1 - who;
        match op >> 1 {
            // Connect both ends (the transport is up).
            0..=9 => {
                if !sides[0].connected {
                    for s in &mut sides {
                        s.connected = true;
                        s.wire.clear();
                        let n = now(mono, s.skew);
                        s.ep.handle_connected(n);
                    }
                }
            }
            // Deliver the oldest frame of `who` to the other side.
            10..=59 => {
                if !sides[who].wire.is_empty() && sides[other].connected {
                    let f = sides[who].wire.remove(0);
                    let n = now(mono, sides[other].skew);
                    sides[other].ep.handle_message(n, body(&f));
                }
            }
            // Deliver it mutated.
            60..=67 => {
                if !sides[who].wire.is_empty() && sides[other].connected {
                    let mut f = sides[who].wire.remove(0);
                    let at = usize::from(input.u16()) % f.len().max(1);
                    if let Some(b) = f.get_mut(at) {
                        *b ^= input.u8() | 1;
                    }
                    let n = now(mono, sides[other].skew);
                    sides[other].ep.handle_message(n, body(&f));
                }
            }
            // Inject arbitrary bytes.
            68..=71 => {
                let len = usize::from(input.u8());
                let bytes: Vec<u8> = (0..len).map(|_| input.u8()).collect();
                let n = now(mono, sides[who].skew);
                sides[who].ep.handle_message(n, &bytes);
            }
            // Lose the connection.
            72..=79 => {
                for s in &mut sides {
                    if s.connected {
                        s.connected = false;
                        s.wire.clear();
                        let n = now(mono, s.skew);
                        s.ep.handle_closed(n);
                    }
                }
            }
            // Time passes (up to ~65 s) and timers fire.
            80..=111 => {
                mono += u64::from(input.u16());
                for s in &mut sides {
                    let n = now(mono, s.skew);
                    s.ep.handle_timeout(n);
                }
            }
            // Restart `who` from its durable record (a crash loses the rest).
            112..=115 => {
                let n = now(mono, sides[who].skew);
                let role = sides[who].role;
                let durable = sides[who].durable;
                sides[who].ep = endpoint(role, durable, n);
                sides[who].connected = false;
                // A PARTNER-DOWN an operator ordered survives the restart (it is persisted).
                sides[who].wire.clear();
                if sides[other].connected {
                    sides[other].connected = false;
                    sides[other].wire.clear();
                    let n = now(mono, sides[other].skew);
                    sides[other].ep.handle_closed(n);
                }
            }
            // The operator says the partner is down.
            116..=119 => {
                let n = now(mono, sides[who].skew);
                if sides[who]
                    .ep
                    .handle_operator(n, Operator::PartnerDown)
                    .is_ok()
                {
                    sides[who].operator_down = true;
                }
            }
            // `who` sends a BNDUPD with arbitrary options (when its window allows).
            120..=123 => {
                let len = usize::from(input.u8());
                let options: Vec<u8> = (0..len).map(|_| input.u8()).collect();
                let n = now(mono, sides[who].skew);
                let _ = sides[who].ep.send_bndupd(n, u64::from(op), &options);
            }
            // Skew `who`'s clock a little.
            _ => sides[who].skew = u32::from(input.u8() % 8),
        }
        for s in &mut sides {
            s.last = now(mono, s.skew);
            s.drain();
            // An ordered PARTNER-DOWN lasts until the side leaves it (a restart passes
            // through STARTUP and resumes it from the record, RFC 8156 §8.3.2).
            if !matches!(
                s.ep.state().name(),
                StateName::PartnerDown | StateName::Startup
            ) {
                s.operator_down = false;
            }
        }
        let both_down = sides
            .iter()
            .all(|s| s.ep.state().name() == StateName::PartnerDown);
        assert!(
            !both_down || sides.iter().any(|s| s.operator_down),
            "both in PARTNER-DOWN without an operator: {:?} / {:?}",
            sides[0].ep.status(),
            sides[1].ep.status()
        );
        let [p, s] = [sides[0].ep.policy(), sides[1].ep.policy()];
        if p.new_leases && s.new_leases {
            assert!(
                !matches!(p.addresses, AddressShare::All) && p.addresses != s.addresses,
                "both allocate from the same addresses: {p:?} / {s:?}"
            );
        }
    }
    [sides[0].ep.state().name(), sides[1].ep.state().name()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted input: connect, then alternate deliveries both ways and time steps; the pair
    /// must reach NORMAL (so the harness really drives the protocol, not just drops input).
    #[test]
    fn scripted_input_drives_the_pair_to_normal() {
        let mut data = vec![0u8]; // connect
        for _ in 0..40 {
            data.extend([20, 21]); // deliver primary -> secondary, secondary -> primary
        }
        for _ in 0..20 {
            data.extend([160, 0x13, 0x88]); // 5 s pass
            data.extend([20, 21, 20, 21]);
        }
        assert_eq!(run(&data), [StateName::Normal, StateName::Normal]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x1234_5678;
        for len in [0usize, 1, 7, 64, 300, 2000] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            run(&data);
        }
    }
}
