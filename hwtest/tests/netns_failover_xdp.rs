//! The RFC 8156 failover pair on the XDP/AF_XDP datapath: `cargo xtask lab --failover
//! --datapath xdp` as a test. Two `tandem run` processes in two namespaces, the XDP program
//! attached (checked in the kernel with `ip -details link`) on every client link of each
//! server and absent from the failover link (TCP 647, mutual TLS, left to the kernel's stack);
//! real DHCPv6 clients (dhclient, dhcpcd, WIDE dhcp6c) on each side and on a link both servers
//! are on.
//!
//! In XDP mode the main thread publishes each failover state's serving policy to the workers
//! through the policy cell (`docs/failover.md` D22), and the workers' engines obey it. What
//! must hold, each checked by the lab:
//!
//! * both servers reach NORMAL (RFC 8156 §8.8);
//! * in NORMAL the secondary is renew responsive (§8.8.1, D16): on the shared link its AF_XDP
//!   worker receives the client's messages (its `rx` in `tandem status --json` grows, the XDP
//!   program's `xdp_redirected` too) and sends nothing (`tx` unchanged), and the engines the
//!   workers run count them as `drop_renew_responsive_only`; the primary's worker there
//!   answers;
//! * after a SIGKILL of the primary the secondary goes COMMUNICATIONS-INTERRUPTED (§8.8.2),
//!   `tandem partner-down` takes it to PARTNER-DOWN (§8.4), and its own client is served by its
//!   AF_XDP worker (§8.4.1: responsive);
//! * binding sync through the workers (RFC 8156 §7, `docs/failover.md` D27): every active
//!   lease the primary's workers grant reaches the secondary's table within 5 s (from the
//!   workers' change rings to the failover plane, BNDUPD, stored by the secondary's worker
//!   owning the client's shard), and after the restart both tables hold the same active leases
//!   (the secondary's PARTNER-DOWN grant reached the restarted primary, §8.8);
//! * the primary, restarted on its state directory, attaches its XDP program again and both
//!   return to NORMAL (§8.3.2);
//! * every `READY` says `mode=xdp` and every `COUNTERS` line has `xdp_redirected > 0`.

use std::path::Path;

use tandem_hwtest::lab::LabDatapath;
use tandem_hwtest::lab::failover::{self, FailoverOptions};
use tandem_hwtest::require_privileges;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");

/// The failover lab on XDP: the pair serves real clients on each side through AF_XDP workers
/// that obey the failover state's serving policy.
#[test]
fn netns_failover_xdp_lab_pair_serves_real_clients_under_the_failover_policy() {
    require_privileges!();
    failover::main_job(
        Path::new(TANDEM),
        &FailoverOptions {
            datapath: LabDatapath::Xdp,
            ..FailoverOptions::default()
        },
    )
    .expect("the failover lab on XDP reports problems");
}
