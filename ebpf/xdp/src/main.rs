//! Tandem's XDP program: steers DHCPv6 traffic for the server into AF_XDP sockets and leaves
//! everything else to the kernel.
//!
//! A frame is redirected to `XSKS[rx_queue_index]` when it is IPv6/UDP with destination port 547
//! (RFC 8415 §7.2: clients' multicast to ff02::1:2 and unicast from clients and relay agents),
//! seen through up to [`MAX_VLAN_TAGS`] VLAN tags (0x8100, 0x88a8, 0x9100) and up to
//! [`MAX_EXT_HEADERS`] IPv6 extension headers (hop-by-hop, routing, destination options;
//! RFC 8200 §4). Everything else gets `XDP_PASS`: neighbour discovery, ICMPv6, SSH, the failover
//! TCP port 647, other UDP, fragments, and frames the program cannot parse. A miss in `XSKS` (no
//! socket for that queue) is `XDP_PASS` too, so a half-configured server degrades to the kernel
//! path instead of dropping DHCPv6.
//!
//! Every frame bumps the per-CPU counter `seen` and exactly one verdict counter (see
//! `tandem_xdp_abi::Counter`). Logging (aya-log) is reserved for rare events; the level is a
//! load-time constant (`AYA_LOG_LEVEL` in `.rodata`), so the verifier prunes disabled log calls.
//!
//! Verifier notes: packet offsets are compile-time constants up to the IPv6 header (one
//! instantiation of [`steer_ipv6`] per VLAN depth). Behind it the offset varies, but it is the
//! sum of at most [`MAX_EXT_HEADERS`] lengths of at most 2048 bytes each, so the verifier can
//! bound it, and every read is checked against `data_end` first ([`bytes_at`]).
//!
//! For the host this file builds as an empty `main` (so `cargo clippy --workspace` works); the
//! real object is built for `bpfel-unknown-none` by `tandem-datapath`'s build script.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{PerCpuArray, XskMap},
    programs::XdpContext,
};
use aya_log_ebpf::info;
use tandem_xdp_abi::{
    COUNTER_COUNT, Counter, DHCPV6_SERVER_PORT, MAX_EXT_HEADERS, MAX_QUEUES, MAX_VLAN_TAGS,
    ethertype, next_header,
};

/// RX queue index → AF_XDP socket. Filled by userspace (`XdpProgram::register_socket`).
#[map]
static XSKS: XskMap = XskMap::with_max_entries(MAX_QUEUES, 0);

/// One per-CPU `u64` per [`Counter`]; userspace sums the CPUs.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT as u32, 0);

/// Ethernet header: destination MAC, source MAC, ethertype.
const ETH_HDR_LEN: usize = 14;
/// One VLAN tag: TCI, then the inner ethertype.
const VLAN_TAG_LEN: usize = 4;
/// Fixed IPv6 header (RFC 8200 §3).
const IPV6_HDR_LEN: usize = 40;
/// UDP header (RFC 768).
const UDP_HDR_LEN: usize = 8;

// The three VLAN depths below are spelled out; keep them in step with the ABI.
const _: () = assert!(MAX_VLAN_TAGS == 2);

#[xdp]
fn tandem_xdp(ctx: XdpContext) -> u32 {
    bump(Counter::Seen);
    match classify(&ctx) {
        Ok(()) => redirect(&ctx),
        Err(reason) => {
            bump(reason);
            xdp_action::XDP_PASS
        }
    }
}

/// Redirects a DHCPv6 server-port datagram to the socket of its RX queue, or passes it to the
/// kernel when that queue has no socket.
#[inline(always)]
fn redirect(ctx: &XdpContext) -> u32 {
    let queue = ctx.rx_queue_index();
    // The low two bits of the flags are the action returned when XSKS[queue] is empty.
    match XSKS.redirect(queue, u64::from(xdp_action::XDP_PASS)) {
        Ok(action) => {
            bump(Counter::Redirected);
            action
        }
        Err(action) => {
            bump(Counter::NoSocket);
            info!(
                ctx,
                "DHCPv6 on rx queue {} but no AF_XDP socket there: passing to the kernel", queue
            );
            action
        }
    }
}

/// `Ok(())` for an IPv6/UDP datagram to port 547; otherwise the verdict counter saying why not.
#[inline(always)]
fn classify(ctx: &XdpContext) -> Result<(), Counter> {
    let eth = bytes_at::<ETH_HDR_LEN>(ctx, 0).ok_or(Counter::TruncatedEth)?;
    let outer = u16::from_be_bytes([eth[12], eth[13]]);
    if outer == ethertype::IPV6 {
        return steer_ipv6::<ETH_HDR_LEN>(ctx);
    }
    if !is_vlan_tag(outer) {
        return Err(Counter::PassNotIpv6);
    }
    bump(Counter::Vlan);

    const ONE_TAG: usize = ETH_HDR_LEN + VLAN_TAG_LEN;
    let tag = bytes_at::<VLAN_TAG_LEN>(ctx, ETH_HDR_LEN).ok_or(Counter::TruncatedVlan)?;
    let inner = u16::from_be_bytes([tag[2], tag[3]]);
    if inner == ethertype::IPV6 {
        return steer_ipv6::<ONE_TAG>(ctx);
    }
    if !is_vlan_tag(inner) {
        return Err(Counter::PassNotIpv6);
    }

    const TWO_TAGS: usize = ONE_TAG + VLAN_TAG_LEN;
    let tag = bytes_at::<VLAN_TAG_LEN>(ctx, ONE_TAG).ok_or(Counter::TruncatedVlan)?;
    let innermost = u16::from_be_bytes([tag[2], tag[3]]);
    if innermost == ethertype::IPV6 {
        return steer_ipv6::<TWO_TAGS>(ctx);
    }
    if is_vlan_tag(innermost) {
        return Err(Counter::PassVlanTooDeep);
    }
    Err(Counter::PassNotIpv6)
}

/// Parses IPv6 at the constant offset `L3`, follows extension headers, and checks for UDP to
/// port 547.
#[inline(always)]
fn steer_ipv6<const L3: usize>(ctx: &XdpContext) -> Result<(), Counter> {
    let ip = bytes_at::<IPV6_HDR_LEN>(ctx, L3).ok_or(Counter::TruncatedIpv6)?;
    if ip[0] >> 4 != 6 {
        return Err(Counter::PassNotIpv6);
    }
    let mut next = ip[6];
    if next != next_header::UDP && is_extension_header(next) {
        bump(Counter::ExtHdr);
    }

    // RFC 8200 §4: each followed header starts with (Next Header, Hdr Ext Len) and is
    // (Hdr Ext Len + 1) * 8 bytes long. Constant trip count: the verifier sees a bounded walk.
    let mut offset = L3 + IPV6_HDR_LEN;
    for _ in 0..MAX_EXT_HEADERS {
        match step(next)? {
            Step::Udp => break,
            Step::Follow => {
                let ext = bytes_at::<2>(ctx, offset).ok_or(Counter::TruncatedExtHdr)?;
                next = ext[0];
                offset += (usize::from(ext[1]) + 1) * 8;
                // The whole header must be inside the frame, not just its first two bytes.
                bytes_at::<0>(ctx, offset).ok_or(Counter::TruncatedExtHdr)?;
            }
        }
    }
    match step(next)? {
        Step::Udp => {}
        Step::Follow => return Err(Counter::PassExtHdrTooMany),
    }

    let udp = bytes_at::<UDP_HDR_LEN>(ctx, offset).ok_or(Counter::TruncatedUdp)?;
    if u16::from_be_bytes([udp[2], udp[3]]) != DHCPV6_SERVER_PORT {
        return Err(Counter::PassNotDhcpPort);
    }
    Ok(())
}

/// What to do with an IPv6 Next Header value during the walk.
enum Step {
    /// The UDP header comes next.
    Udp,
    /// An extension header the program follows.
    Follow,
}

/// Classifies a Next Header value; `Err` ends the walk with that verdict.
#[inline(always)]
fn step(next: u8) -> Result<Step, Counter> {
    match next {
        next_header::UDP => Ok(Step::Udp),
        next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTS => Ok(Step::Follow),
        n if is_extension_header(n) => Err(Counter::PassExtHdrUnsupported),
        _ => Err(Counter::PassNotUdp),
    }
}

/// Whether `next` is an IPv6 extension header type (RFC 8200 §4 and the IANA "IPv6 Extension
/// Header Types" registry), followed or not. No Next Header (59) counts: nothing follows it.
#[inline(always)]
fn is_extension_header(next: u8) -> bool {
    matches!(
        next,
        next_header::HOP_BY_HOP
            | next_header::ROUTING
            | next_header::FRAGMENT
            | next_header::ESP
            | next_header::AH
            | next_header::NO_NEXT
            | next_header::DEST_OPTS
            | next_header::MOBILITY
            | next_header::HIP
            | next_header::SHIM6
            | next_header::EXPERIMENTAL_1
            | next_header::EXPERIMENTAL_2
    )
}

/// Whether `ethertype` introduces a VLAN tag (802.1Q, 802.1ad, or the legacy 0x9100).
#[inline(always)]
fn is_vlan_tag(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

/// The `LEN` frame bytes starting at `offset`, or `None` if the frame is shorter.
#[inline(always)]
fn bytes_at<const LEN: usize>(ctx: &XdpContext, offset: usize) -> Option<&[u8; LEN]> {
    let start = ctx.data();
    let end = ctx.data_end();
    // `offset` is at most 22 + 40 + 4 * 2048 and packet pointers are kernel addresses far below
    // usize::MAX, so the sums cannot wrap.
    let at = start + offset;
    if at + LEN > end {
        return None;
    }
    // SAFETY: [at, at + LEN) lies inside [data, data_end), which the kernel keeps readable for
    // the whole run of the program; [u8; LEN] has alignment 1; the reference does not outlive
    // `ctx` and the program never writes to the frame.
    Some(unsafe { &*(at as *const [u8; LEN]) })
}

/// Adds one to `counter` on this CPU.
#[inline(always)]
fn bump(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter.index()) {
        // SAFETY: the slot is this CPU's copy of a map value that lives as long as the program,
        // and XDP programs run with migration disabled, so nothing else writes it concurrently.
        unsafe { *slot = (*slot).wrapping_add(1) };
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable in a verified program: the verifier rejects any path that could get here
    // (there is no way to abort from BPF code), so this only satisfies no_std.
    loop {}
}

/// Kernel license string: GPL-compatible, needed for GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Host stub: the real program only exists for `target_arch = "bpf"`.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
