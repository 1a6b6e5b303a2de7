//! One AF_XDP socket with its own UMEM, bound to one RX queue of an interface (xdpilone).
//!
//! [`XskSocket::open`] maps a page-aligned UMEM area (`frame_count` chunks of `frame_size`
//! bytes), registers it, creates the fill/completion and RX/TX rings, binds to
//! `(iface, queue)` with `XDP_USE_NEED_WAKEUP` and posts half of the frames to the fill ring.
//! Every frame the kernel does not own sits in a userspace [`FreeList`]; a frame is always in
//! exactly one place: free list, fill ring, RX ring, in the worker's hands, TX ring or
//! completion ring.
//!
//! The xdpilone types are not `Send`: an `XskSocket` is created, used and dropped on the worker
//! thread that owns it. Only [`XskSocket::fd`] (a plain integer) crosses to the thread that
//! registers the socket in the XSKMAP.
//!
//! xdpilone quirk (docs/toolchain.md §6): reserving slots on the fill or TX ring can return
//! *fewer* slots than free while the ring has room, because the cached consumer index is only
//! refreshed when it reads zero. [`XskSocket::refill`] and [`XskSocket::transmit`] therefore
//! reserve again for the rest instead of treating a short reservation as "ring full".

use std::ffi::CString;
use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::ops::Range;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

/// Kernel limit on a UMEM chunk in aligned mode (`XDP_UMEM_MIN_CHUNK_SIZE`).
const MIN_FRAME_SIZE: u32 = 2048;
/// Times [`XskSocket::refill`] and [`XskSocket::transmit`] reserve again after a short
/// reservation before concluding that the ring is full.
const RESERVE_ATTEMPTS: usize = 3;

/// How the socket is bound (`sockaddr_xdp.sxdp_flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindMode {
    /// No mode flag: the kernel tries zero-copy and falls back to copy mode by itself when the
    /// driver has no AF_XDP zero-copy support (veth, generic XDP). [`XskSocket::zero_copy`]
    /// tells which one it picked.
    #[default]
    Auto,
    /// `XDP_ZEROCOPY`: fail (`EOPNOTSUPP`) unless the driver supports zero-copy.
    ZeroCopy,
    /// `XDP_COPY`: always copy.
    Copy,
}

/// Geometry and binding of one AF_XDP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XskConfig {
    /// Interface name, e.g. `eth0`.
    pub iface: String,
    /// RX queue index to bind to.
    pub queue: u32,
    /// UMEM chunks (frames).
    pub frame_count: u32,
    /// Bytes per chunk: a power of two from 2048 to the page size.
    pub frame_size: u32,
    /// Entries of each of the four rings (power of two, at most `frame_count`).
    pub ring_size: u32,
    /// Zero-copy policy.
    pub bind_mode: BindMode,
}

impl XskConfig {
    /// 4096 frames × 2048 bytes (8 MiB of UMEM), rings of 2048 entries, [`BindMode::Auto`].
    pub fn new(iface: impl Into<String>, queue: u32) -> Self {
        Self {
            iface: iface.into(),
            queue,
            frame_count: 4096,
            frame_size: 2048,
            ring_size: 2048,
            bind_mode: BindMode::Auto,
        }
    }

    /// Bytes of UMEM this configuration maps.
    pub fn umem_len(&self) -> Option<usize> {
        usize::try_from(self.frame_count)
            .ok()?
            .checked_mul(usize::try_from(self.frame_size).ok()?)
    }

    fn validate(&self) -> Result<usize, XskError> {
        // SAFETY: sysconf has no preconditions; it only reads a system constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u32::try_from(page).unwrap_or(4096);
        if !self.frame_size.is_power_of_two()
            || self.frame_size < MIN_FRAME_SIZE
            || self.frame_size > page
        {
            return Err(XskError::Config(
                "frame_size must be a power of two from 2048 to the page size",
            ));
        }
        if self.frame_count == 0 {
            return Err(XskError::Config("frame_count must not be zero"));
        }
        if !self.ring_size.is_power_of_two() || self.ring_size > self.frame_count {
            return Err(XskError::Config(
                "ring_size must be a power of two no larger than frame_count",
            ));
        }
        if self.iface.is_empty() || self.iface.len() >= libc::IFNAMSIZ {
            return Err(XskError::Config("interface name must be 1 to 15 bytes"));
        }
        self.umem_len()
            .ok_or(XskError::Config("UMEM size overflows usize"))
    }
}

/// Why an AF_XDP socket could not be set up or queried.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The [`XskConfig`] is unusable.
    #[error("invalid AF_XDP configuration: {0}")]
    Config(&'static str),
    /// The interface does not exist (in this network namespace) or its name is invalid.
    #[error("interface {iface:?}: {source}")]
    Interface {
        /// The interface name.
        iface: String,
        /// What `if_nametoindex` said.
        #[source]
        source: io::Error,
    },
    /// Mapping the UMEM area failed.
    #[error("mmap of a {len}-byte UMEM area: {source}")]
    Mmap {
        /// Bytes requested.
        len: usize,
        /// What `mmap` said.
        #[source]
        source: io::Error,
    },
    /// A socket, UMEM or ring operation failed.
    #[error("{op} for {iface} queue {queue}: {source}")]
    Setup {
        /// The operation, e.g. `"binding the AF_XDP socket"`.
        op: &'static str,
        /// The interface name.
        iface: String,
        /// The RX queue.
        queue: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading the socket statistics failed.
    #[error("reading AF_XDP statistics: {0}")]
    Statistics(#[source] io::Error),
}

impl XskError {
    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Config(_) => None,
            Self::Interface { source, .. }
            | Self::Mmap { source, .. }
            | Self::Setup { source, .. }
            | Self::Statistics(source) => source.raw_os_error(),
        }
    }

    /// A hint for an operator, for the errors whose cause is usually the same.
    pub fn hint(&self) -> Option<&'static str> {
        let errno = self.raw_os_error()?;
        let op = match self {
            Self::Setup { op, .. } => *op,
            Self::Interface { .. } => return Some("check the interface name with `ip link`"),
            _ => "",
        };
        match errno {
            libc::EPERM | libc::EACCES => Some(
                "AF_XDP needs root or CAP_NET_RAW + CAP_NET_ADMIN (and CAP_IPC_LOCK for the UMEM)",
            ),
            libc::EAFNOSUPPORT => Some("this kernel has no AF_XDP support (CONFIG_XDP_SOCKETS)"),
            libc::EINVAL if op == OP_BIND => Some(
                "the queue index is probably out of range: see `ethtool -l` for the queue count",
            ),
            libc::EBUSY if op == OP_BIND => {
                Some("another AF_XDP socket is already bound to this queue")
            }
            libc::EOPNOTSUPP if op == OP_BIND => Some(
                "the driver has no AF_XDP zero-copy support; use the automatic or copy bind mode",
            ),
            libc::ENOMEM | libc::ENOBUFS => Some(
                "not enough locked memory for the UMEM: raise `ulimit -l` or grant CAP_IPC_LOCK",
            ),
            _ => None,
        }
    }
}

const OP_UMEM: &str = "creating the AF_XDP socket and registering its UMEM";
const OP_SOCKET: &str = "preparing the AF_XDP socket";
const OP_FQ_CQ: &str = "creating the fill and completion rings";
const OP_RX_TX: &str = "creating the RX and TX rings";
const OP_MAP_RX: &str = "mapping the RX ring";
const OP_MAP_TX: &str = "mapping the TX ring";
const OP_BIND: &str = "binding the AF_XDP socket";

/// Kernel counters of one AF_XDP socket (`getsockopt(SOL_XDP, XDP_STATISTICS)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStatistics {
    /// Frames dropped for reasons other than the two below (e.g. too large for the chunk).
    pub rx_dropped: u64,
    /// Invalid RX descriptors.
    pub rx_invalid_descs: u64,
    /// Invalid TX descriptors (bad address or length).
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Frames dropped because the fill ring was empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the TX ring was found empty when the kernel looked.
    pub tx_ring_empty_descs: u64,
}

/// A descriptor of a frame in the UMEM: the packet starts at byte `addr` of the area and is
/// `len` bytes long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// Offset of the packet's first byte in the UMEM area (chunk base + headroom).
    pub addr: u64,
    /// Packet length.
    pub len: u32,
}

/// The stack of frames (chunk base addresses) that userspace owns and that are not in use.
///
/// Allocated once with room for every frame of the UMEM, so `push` and `pop` never allocate.
#[derive(Clone, Debug)]
pub struct FreeList {
    frames: Vec<u64>,
    frame_size: u64,
    frame_count: u32,
}

impl FreeList {
    /// A list holding all `frame_count` frames of `frame_size` bytes.
    pub fn full(frame_count: u32, frame_size: u32) -> Self {
        let frames = (0..u64::from(frame_count))
            .rev()
            .map(|i| i * u64::from(frame_size))
            .collect();
        Self {
            frames,
            frame_size: u64::from(frame_size),
            frame_count,
        }
    }

    /// Takes a free frame (its chunk base address).
    pub fn pop(&mut self) -> Option<u64> {
        self.frames.pop()
    }

    /// Gives a frame back; any address inside the chunk is accepted and rounded down to the
    /// chunk base. Returns `false` (and keeps nothing) for an address outside the UMEM, or when
    /// the list already holds every frame: a frame given back twice.
    #[must_use]
    pub fn push(&mut self, addr: u64) -> bool {
        let index = addr / self.frame_size;
        let full = u32::try_from(self.frames.len()).map_or(true, |n| n >= self.frame_count);
        if index >= u64::from(self.frame_count) || full {
            return false;
        }
        self.frames.push(index * self.frame_size);
        true
    }

    /// Free frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// `true` when no frame is free.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames of the UMEM (the most this list can hold).
    pub fn capacity(&self) -> u32 {
        self.frame_count
    }
}

/// The byte range of a received packet's chunk space: from the packet start `addr` to the end
/// of its chunk, provided the `len` packet bytes fit and the chunk lies inside an area of
/// `area_len` bytes. `None` for a descriptor that breaks those rules.
pub fn frame_range(addr: u64, len: u32, frame_size: u32, area_len: usize) -> Option<Range<usize>> {
    let frame_size = u64::from(frame_size);
    let chunk_end = (addr / frame_size)
        .checked_add(1)?
        .checked_mul(frame_size)?;
    let packet_end = addr.checked_add(u64::from(len))?;
    if packet_end > chunk_end || chunk_end > u64::try_from(area_len).ok()? {
        return None;
    }
    Some(usize::try_from(addr).ok()?..usize::try_from(chunk_end).ok()?)
}

/// An anonymous, page-aligned mapping that holds the UMEM frames; unmapped on drop.
struct UmemArea {
    ptr: NonNull<u8>,
    len: usize,
}

impl UmemArea {
    fn map(len: usize) -> Result<Self, XskError> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing: no fd, no
        // existing memory is touched. The result is checked against MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(XskError::Mmap {
                len,
                source: io::Error::last_os_error(),
            });
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(XskError::Mmap {
            len,
            source: io::Error::from_raw_os_error(libc::ENOMEM),
        })?;
        Ok(Self { ptr, len })
    }

    fn as_nonnull_slice(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `map`, unmapped only here. The
        // kernel pins the pages it registered as UMEM, so unmapping our view is safe even if
        // the socket release is still in flight.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One AF_XDP socket with its UMEM and four rings, bound to one RX queue.
///
/// Not `Send`: create it on the thread that uses it (see the module docs).
pub struct XskSocket {
    // Field order is drop order: rings before the socket, the socket before the UMEM that
    // shares its fd, and the mapped area last.
    rx: RingRx,
    tx: RingTx,
    user: User,
    device: DeviceQueue,
    umem: Umem,
    area: UmemArea,
    free: FreeList,
    frame_size: u32,
    ring_size: u32,
    iface: String,
    queue: u32,
    zero_copy: bool,
}

impl fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XskSocket")
            .field("iface", &self.iface)
            .field("queue", &self.queue)
            .field("fd", &self.fd())
            .field("zero_copy", &self.zero_copy)
            .field("free_frames", &self.free.len())
            .finish_non_exhaustive()
    }
}

fn os(errno: &xdpilone::Errno) -> io::Error {
    // xdpilone returns some errors negated (`Errno(-EINVAL)`).
    io::Error::from_raw_os_error(errno.get_raw().abs())
}

impl XskSocket {
    /// Creates the UMEM, socket and rings and binds them to `config.queue` of `config.iface`,
    /// then posts frames to the fill ring so the kernel can start receiving.
    ///
    /// The socket receives nothing until its [`fd`](Self::fd) is put into the XSKMAP slot of
    /// its queue.
    pub fn open(config: &XskConfig) -> Result<Self, XskError> {
        let len = config.validate()?;
        let setup = |op: &'static str| {
            let iface = config.iface.clone();
            move |e: xdpilone::Errno| XskError::Setup {
                op,
                iface,
                queue: config.queue,
                source: os(&e),
            }
        };

        let name = CString::new(config.iface.as_str())
            .map_err(|_| XskError::Config("interface name contains a NUL byte"))?;
        let mut info = IfInfo::invalid();
        info.from_name(&name).map_err(|e| XskError::Interface {
            iface: config.iface.clone(),
            source: os(&e),
        })?;
        info.set_queue(config.queue);

        let area = UmemArea::map(len)?;
        let umem_config = UmemConfig {
            fill_size: config.ring_size,
            complete_size: config.ring_size,
            frame_size: config.frame_size,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: `area` is a fresh page-aligned mapping of `len` bytes (mmap returns
        // page-aligned memory) that holds exactly `frame_count` chunks of `frame_size`, and it
        // outlives the `Umem`: both are fields of `Self` and `area` is declared (so dropped)
        // last.
        let umem =
            unsafe { Umem::new(umem_config, area.as_nonnull_slice()) }.map_err(setup(OP_UMEM))?;
        let socket = Socket::with_shared(&info, &umem).map_err(setup(OP_SOCKET))?;
        let device = umem.fq_cq(&socket).map_err(setup(OP_FQ_CQ))?;
        let bind_flags = SocketConfig::XDP_BIND_NEED_WAKEUP
            | match config.bind_mode {
                BindMode::Auto => 0,
                BindMode::ZeroCopy => SocketConfig::XDP_BIND_ZEROCOPY,
                BindMode::Copy => SocketConfig::XDP_BIND_COPY,
            };
        let ring = NonZeroU32::new(config.ring_size);
        let user = umem
            .rx_tx(
                &socket,
                &SocketConfig {
                    rx_size: ring,
                    tx_size: ring,
                    bind_flags,
                },
            )
            .map_err(setup(OP_RX_TX))?;
        let rx = user.map_rx().map_err(setup(OP_MAP_RX))?;
        let tx = user.map_tx().map_err(setup(OP_MAP_TX))?;
        umem.bind(&user).map_err(setup(OP_BIND))?;

        let zero_copy = query_zero_copy(user.as_raw_fd());
        let mut this = Self {
            rx,
            tx,
            user,
            device,
            umem,
            area,
            free: FreeList::full(config.frame_count, config.frame_size),
            frame_size: config.frame_size,
            ring_size: config.ring_size,
            iface: config.iface.clone(),
            queue: config.queue,
            zero_copy,
        };
        this.refill();
        log::debug!(
            "AF_XDP socket fd {} bound to {} queue {} ({} mode, {} frames, {} in fill ring)",
            this.fd(),
            this.iface,
            this.queue,
            if zero_copy { "zero-copy" } else { "copy" },
            this.umem.len_frames(),
            this.device.pending(),
        );
        Ok(this)
    }

    /// The socket's file descriptor, to be stored in the XSKMAP. Owned by this socket: do not
    /// close it; it stays valid until the socket is dropped.
    pub fn fd(&self) -> RawFd {
        self.user.as_raw_fd()
    }

    /// `true` if the kernel bound the socket in zero-copy mode (`XDP_OPTIONS_ZEROCOPY`).
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The interface this socket is bound to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The RX queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Frames currently in the userspace free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// The kernel's counters for this socket.
    pub fn statistics(&self) -> Result<XskStatistics, XskError> {
        let s = self
            .user
            .statistics_v2()
            .map_err(|e| XskError::Statistics(os(&e)))?;
        Ok(XskStatistics {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }

    /// Moves free frames to the fill ring, up to the ring size; returns how many were posted.
    pub fn refill(&mut self) -> u32 {
        let mut posted = 0;
        for _ in 0..RESERVE_ATTEMPTS {
            let want = u32::try_from(self.free.len())
                .unwrap_or(u32::MAX)
                .min(self.ring_size);
            if want == 0 {
                break;
            }
            let mut fill = self.device.fill(want);
            let capacity = fill.capacity();
            if capacity == 0 {
                break;
            }
            for _ in 0..capacity {
                // `capacity <= want <= free.len()`: the pop succeeds, and the first
                // `capacity` inserts are guaranteed to succeed.
                let Some(addr) = self.free.pop() else { break };
                if !fill.insert_once(addr) {
                    let _ = self.free.push(addr);
                    break;
                }
                posted += 1;
            }
            fill.commit();
        }
        posted
    }

    /// Takes up to `out.len()` received packets off the RX ring; returns how many. The frames
    /// are the caller's until given to [`transmit`](Self::transmit) or
    /// [`release`](Self::release).
    pub fn receive(&mut self, out: &mut [Desc]) -> usize {
        let max = u32::try_from(out.len()).unwrap_or(u32::MAX);
        if max == 0 {
            return 0;
        }
        let mut rx = self.rx.receive(max);
        let mut n = 0;
        for slot in out.iter_mut() {
            let Some(desc) = rx.read() else { break };
            *slot = Desc {
                addr: desc.addr,
                len: desc.len,
            };
            n += 1;
        }
        rx.release();
        n
    }

    /// The chunk space of a received frame, from the packet's first byte to the end of its
    /// chunk (so a reply written in place may be longer than the request), or `None` for a
    /// descriptor that does not describe a frame of this UMEM.
    pub fn frame_mut(&mut self, desc: Desc) -> Option<&mut [u8]> {
        let range = frame_range(desc.addr, desc.len, self.frame_size, self.area.len)?;
        // SAFETY: `frame_range` checked that `range` lies inside the mapped area. The frame
        // came off the RX ring (the acquire in `receive` orders the kernel's writes before our
        // reads) and the kernel no longer touches it until we post it to the fill or TX ring,
        // which needs `&mut self` and thus ends this borrow. Chunks do not overlap, so no other
        // reference to these bytes exists.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.area.ptr.as_ptr().add(range.start), range.len())
        })
    }

    /// Puts frames on the TX ring (each `addr` as received, `len` the bytes to send) and
    /// returns how many were queued: a prefix of `descs`. The rest did not fit (ring full) and
    /// are still the caller's.
    pub fn transmit(&mut self, descs: &[Desc]) -> usize {
        let mut sent = 0;
        for _ in 0..RESERVE_ATTEMPTS {
            let Some(rest) = descs.get(sent..) else { break };
            let want = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            if want == 0 {
                break;
            }
            let mut tx = self.tx.transmit(want);
            let capacity = usize::try_from(tx.capacity()).unwrap_or(0);
            if capacity == 0 {
                break;
            }
            for d in rest.iter().take(capacity) {
                if !tx.insert_once(XdpDesc {
                    addr: d.addr,
                    len: d.len,
                    options: 0,
                }) {
                    break;
                }
                sent += 1;
            }
            tx.commit();
        }
        sent
    }

    /// Asks the kernel to process the TX ring if it wants to be woken (`sendto`): copy mode
    /// transmits only from inside that call, at most 32 frames per call, so this repeats while
    /// frames are pending. Returns the number of `sendto` calls made.
    pub fn kick_tx(&mut self) -> u32 {
        let mut calls = 0;
        while calls < 16 && self.tx.pending() > 0 && self.tx.needs_wakeup() {
            self.tx.wake();
            calls += 1;
        }
        calls
    }

    /// Descriptors on the TX ring that the kernel has not consumed yet.
    pub fn tx_pending(&self) -> u32 {
        self.tx.pending()
    }

    /// Moves transmitted frames from the completion ring to the free list; returns how many.
    pub fn complete(&mut self) -> u32 {
        let mut done = 0;
        let mut lost = 0;
        let mut comp = self.device.complete(self.ring_size);
        while let Some(addr) = comp.read() {
            if self.free.push(addr) {
                done += 1;
            } else {
                lost += 1;
            }
        }
        comp.release();
        if lost > 0 {
            log::warn!(
                "{} queue {}: {lost} completions with a bad address",
                self.iface,
                self.queue
            );
        }
        done
    }

    /// Gives a frame the caller holds (from [`receive`](Self::receive), or not accepted by
    /// [`transmit`](Self::transmit)) back to the free list. Returns `false` for an address
    /// outside the UMEM.
    pub fn release(&mut self, addr: u64) -> bool {
        self.free.push(addr)
    }

    /// If the fill ring wants a wakeup (zero-copy drivers), nudges the kernel with a
    /// non-blocking `poll`. Needed by busy-polling callers, which never block in `poll`.
    pub fn wake_fill_if_needed(&mut self) {
        if self.device.needs_wakeup() {
            self.device.wake();
        }
    }

    /// Blocks until the RX ring has packets or `timeout_ms` passes; returns `Ok(true)` when
    /// readable. `EINTR` counts as a timeout.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd for the duration of the call and nfds is 1.
        let n = unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            };
        }
        Ok(n > 0 && pfd.revents & libc::POLLIN != 0)
    }
}

/// `getsockopt(SOL_XDP, XDP_OPTIONS)`: did the bind end up in zero-copy mode?
fn query_zero_copy(fd: RawFd) -> bool {
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = libc::socklen_t::try_from(size_of::<libc::xdp_options>()).unwrap_or(0);
    // SAFETY: `opts` and `len` are valid for writes and `len` is the size of `opts`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&raw mut opts).cast(),
            &raw mut len,
        )
    };
    rc == 0 && opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_list_full_hands_out_every_frame_once() {
        let mut free = FreeList::full(4, 2048);
        let mut got: Vec<u64> = std::iter::from_fn(|| free.pop()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 2048, 4096, 6144]);
        assert!(free.is_empty());
    }

    #[test]
    fn free_list_push_rounds_to_chunk_base() {
        let mut free = FreeList::full(4, 2048);
        while free.pop().is_some() {}
        assert!(free.push(2048 + 256));
        assert_eq!(free.pop(), Some(2048));
    }

    #[test]
    fn free_list_push_beyond_capacity_refused() {
        let mut free = FreeList::full(2, 2048);
        assert_eq!(free.len(), 2);
        assert!(
            !free.push(0),
            "a third frame in a 2-frame UMEM is a double free"
        );
        assert_eq!(free.len(), 2);
        assert_eq!(free.pop(), Some(0));
        assert!(free.push(100));
        assert_eq!(free.len(), 2);
    }

    #[test]
    fn free_list_push_outside_umem_refused() {
        let mut free = FreeList::full(2, 2048);
        while free.pop().is_some() {}
        assert!(!free.push(4096));
        assert!(!free.push(u64::MAX));
        assert!(free.is_empty());
    }

    #[test]
    fn frame_range_spans_packet_start_to_chunk_end() {
        assert_eq!(frame_range(2048 + 256, 100, 2048, 8192), Some(2304..4096));
        assert_eq!(frame_range(0, 2048, 2048, 8192), Some(0..2048));
    }

    #[test]
    fn frame_range_bad_descriptors_rejected() {
        assert_eq!(
            frame_range(256, 2000, 2048, 8192),
            None,
            "packet runs past its chunk"
        );
        assert_eq!(
            frame_range(8192, 10, 2048, 8192),
            None,
            "chunk outside the area"
        );
        assert_eq!(
            frame_range(u64::MAX - 5, 10, 2048, usize::MAX),
            None,
            "overflow"
        );
    }

    #[test]
    fn xsk_config_bad_geometry_rejected() {
        let mut cfg = XskConfig::new("eth0", 0);
        assert!(cfg.validate().is_ok());
        cfg.frame_size = 1000;
        assert!(matches!(cfg.validate(), Err(XskError::Config(_))));
        cfg.frame_size = 2048;
        cfg.ring_size = 3000;
        assert!(matches!(cfg.validate(), Err(XskError::Config(_))));
        cfg.ring_size = 2048;
        cfg.iface = "a-very-long-interface-name".into();
        assert!(matches!(cfg.validate(), Err(XskError::Config(_))));
    }
}
