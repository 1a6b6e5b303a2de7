//! Privileged tests of Tandem's XDP/AF_XDP datapath, and the lab behind `cargo xtask lab`.
//!
//! Everything here runs for real: network namespaces, a multi-queue veth pair, the XDP program
//! attached by `tandem xdp-demo`, AF_XDP sockets, and DHCPv6 clients on ordinary UDP sockets
//! (docs/toolchain.md §7 and §9).
//!
//! * [`privileges`] / [`require_privileges!`]: a test without root (CAP_NET_ADMIN, CAP_SYS_ADMIN,
//!   CAP_BPF) prints `SKIPPED ...` and returns; with `TANDEM_HWTEST_STRICT=1` (CI) it panics.
//! * [`NetNs`]: a uniquely named namespace, deleted on drop; [`NetNs::run`] runs a closure
//!   inside it (sockets made there stay in it).
//! * [`Lab`]: a server and a client namespace joined by a veth pair with N queues.
//! * [`Server`]: `ip netns exec <ns> tandem xdp-demo ...` as a child process.
//! * [`client`]: DHCPv6 messages built and parsed with `tandem-wire`, and the sockets to send
//!   them from the client namespace.
//! * [`clients`]: real Debian DHCPv6 clients (dhclient, dhcpcd, dibbler, WIDE dhcp6c) and the
//!   WIDE relay in namespaces, `tandem run` as a child, and `tandem leases --json` parsed.
//! * [`needs`]: the programs and fixed paths all this needs from the machine (checked by
//!   `cargo xtask check-env`).
//! * [`traffic`]: non-DHCP services and probes (UDP echo, TCP).
//! * [`lab`]: `cargo xtask lab`: real DHCPv6 clients against `tandem run` ([`lab::xdp_demo`]: the
//!   XDP steering demo).
//! * [`resync`]: the failover resynchronisation benchmark (a secondary with an empty disk
//!   receives N bindings over the veth link; `bench`'s `resync` and
//!   `tests/netns_failover_resync.rs`).

pub mod assert;
pub mod burst;
pub mod capture;
pub mod client;
pub mod clients;
pub mod lab;
pub mod needs;
mod netns;
mod process;
pub mod rawsock;
pub mod resync;
mod server;
mod topo;
pub mod traffic;

use std::sync::OnceLock;

pub use clients::{
    ClientKind, ClientResult, DhclientMode, RelayLab, RunningClient, StatefulOptions,
};
pub use netns::NetNs;
pub use process::{BoundedOutput, ip, run_bounded};
pub use server::{
    DemoArgs, READY_TIMEOUT, STOP_TIMEOUT, Server, ServerOutput, WorkerStats, XdpMode,
};
pub use topo::Lab;

/// Set to `1` to turn a missing privilege into a test failure instead of a skip (CI does).
pub const STRICT_ENV: &str = "TANDEM_HWTEST_STRICT";

/// Capability bits (linux/capability.h) the privileged tests need.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Whether this process can run the privileged tests: effective uid 0, CAP_NET_ADMIN,
/// CAP_SYS_ADMIN and CAP_BPF in the effective set, `ip` on `PATH`, and a network namespace can
/// actually be created. Probed once per process: tests run in parallel, and a probe per test
/// would race on the probe namespace's name.
pub fn privileges() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(probe_privileges).clone()
}

fn probe_privileges() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .ok_or_else(|| format!("no {name} line in /proc/self/status"))
    };
    let euid = field("Uid:")?
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned();
    if euid != "0" {
        return Err(format!("not running as root (euid {euid})"));
    }
    let cap_eff = u64::from_str_radix(field("CapEff:")?, 16)
        .map_err(|e| format!("cannot parse CapEff: {e}"))?;
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_BPF, "CAP_BPF"),
    ]
    .into_iter()
    .filter(|(bit, _)| cap_eff & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if !missing.is_empty() {
        return Err(format!("root without {}", missing.join(", ")));
    }
    let probe = NetNs::new("tandem-probe").map_err(|e| format!("cannot create a netns: {e}"))?;
    drop(probe);
    Ok(())
}

/// The name of the function this macro is expanded in, e.g. `netns_xdp::netns_foo_bar`.
#[doc(hidden)]
#[macro_export]
macro_rules! __function_name {
    () => {{
        fn here() {}
        let name = ::std::any::type_name_of_val(&here);
        name.strip_suffix("::here").unwrap_or(name)
    }};
}

/// First statement of every privileged test. Without the privileges of [`privileges`]:
/// panics if `TANDEM_HWTEST_STRICT=1`, otherwise writes `SKIPPED <test>: ...` straight to the
/// stderr handle (libtest captures `eprintln!`, not the handle) and returns from the test.
#[macro_export]
macro_rules! require_privileges {
    () => {
        if let Err(why) = $crate::privileges() {
            if ::std::env::var_os($crate::STRICT_ENV).is_some_and(|v| v == "1") {
                panic!(
                    "privileged test required ({}=1) but: {why}",
                    $crate::STRICT_ENV
                );
            }
            use ::std::io::Write as _;
            let _ = writeln!(
                ::std::io::stderr().lock(),
                "SKIPPED {}: needs root with CAP_NET_ADMIN+CAP_BPF ({why})",
                $crate::__function_name!()
            );
            return;
        }
    };
}
