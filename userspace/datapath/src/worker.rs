//! Per-queue AF_XDP workers: one thread per RX queue, optionally pinned to a core, answering
//! packets in place from the UMEM.
//!
//! The loop of a [`Worker`]: reap the completion ring into the free list → top up the fill
//! ring → take a batch off the RX ring → run the [`Handler`] on each frame, in place → put the
//! replies on the TX ring (same UMEM frame, new length) → `sendto` if the TX ring wants a
//! wakeup → when idle, `poll()` for up to 100 ms (or spin with `busy_poll`), re-checking the
//! stop flag. Nothing is allocated per packet: descriptors live in stack arrays and counters
//! in atomics, added once per batch.
//!
//! The socket is created on the worker thread (xdpilone types are not `Send`); [`spawn`]
//! waits for it and returns its fd, to be stored in the XSKMAP by the caller, or the setup
//! error.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::xsk::{Desc, XskConfig, XskError, XskSocket, XskStatistics};

/// Frames taken off the RX ring per loop iteration.
pub const BATCH: usize = 64;
/// How long an idle, non-busy-polling worker blocks in `poll()` before re-checking the stop
/// flag.
pub const POLL_TIMEOUT_MS: i32 = 100;
/// How often the kernel's socket counters are copied into [`WorkerStats`].
const KERNEL_STATS_EVERY: Duration = Duration::from_secs(1);

/// Most UMEM frames a worker keeps aside (from frames its handler handed off) to transmit
/// frames it did not receive; further handed-off frames go back to the free list.
pub const SPARE_FRAMES: usize = 256;

/// What a [`Handler`] did with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the first `n` bytes of the frame (the reply written in place).
    Reply(usize),
    /// Nothing to send; the frame goes back to the free list.
    Drop,
    /// The handler copied the frame elsewhere (e.g. to another worker) and will produce the
    /// answer later through [`Handler::poll_outbound`]: the worker keeps the UMEM frame aside
    /// (up to [`SPARE_FRAMES`]) to transmit that answer in.
    HandedOff,
}

/// Answers packets in place, and optionally sends frames it did not receive (hand-off between
/// workers).
pub trait Handler {
    /// `frame` is the received packet inside its UMEM chunk: its first `len` bytes are the
    /// packet and `frame.len()` is all the chunk space from the packet start, so a reply may be
    /// longer than the request. Write the reply at the start of `frame` and return
    /// [`Action::Reply`] with its length (0 or over `frame.len()` counts as a drop), or
    /// [`Action::Drop`], or [`Action::HandedOff`] if the frame was copied elsewhere.
    fn handle(&mut self, frame: &mut [u8], len: usize) -> Action;

    /// Called once per loop iteration (at least every [`POLL_TIMEOUT_MS`] when idle, and
    /// after a wake-up through [`wake_fd`](Self::wake_fd)): work that did not arrive on this
    /// worker's RX ring. `now` is the clock the loop reads once per iteration, before this
    /// call and after the previous batch's replies were put on the TX ring and the kernel
    /// kicked (so it is no earlier than any of them left). Frames to transmit on this
    /// worker's TX ring go through `send`, which copies them into a spare UMEM frame and
    /// returns `false` when it cannot (no spare frame, TX batch full, frame too large).
    /// Returns the number of work items done (0: idle).
    fn poll_outbound(&mut self, now: Instant, send: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let _ = (now, send);
        0
    }

    /// A file descriptor (e.g. an eventfd) that becomes readable when there is outbound
    /// work; an idle worker waits on it besides its socket.
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }

    /// Called before an idle worker blocks: `false` if work arrived meanwhile (the worker
    /// does not block). Handlers that announce work through [`wake_fd`](Self::wake_fd) only to
    /// sleeping workers set their "sleeping" flag here.
    fn ready_to_sleep(&mut self) -> bool {
        true
    }

    /// Called after an idle worker woke up (clears what [`ready_to_sleep`] set).
    ///
    /// [`ready_to_sleep`]: Self::ready_to_sleep
    fn woke(&mut self) {}
}

/// A closure answers in place (`Some(reply length)`) or drops (`None`); it never hands off.
impl<F: FnMut(&mut [u8], usize) -> Option<usize>> Handler for F {
    fn handle(&mut self, frame: &mut [u8], len: usize) -> Action {
        self(frame, len).map_or(Action::Drop, Action::Reply)
    }
}

/// What one worker serves and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The socket: interface, queue, UMEM geometry, bind mode.
    pub xsk: XskConfig,
    /// Core to pin the thread to (`core_affinity`); `None` leaves it to the scheduler.
    pub core: Option<usize>,
    /// Spin instead of blocking in `poll()` when idle: lower latency, one busy core.
    pub busy_poll: bool,
}

impl WorkerConfig {
    /// Default socket geometry for `queue` of `iface`, not pinned, `poll()` when idle.
    pub fn new(iface: impl Into<String>, queue: u32) -> Self {
        Self {
            xsk: XskConfig::new(iface, queue),
            core: None,
            busy_poll: false,
        }
    }
}

/// Counters of one worker, updated by the worker thread and readable from any thread.
#[derive(Debug, Default)]
pub struct WorkerStats {
    rx: AtomicU64,
    replies: AtomicU64,
    dropped: AtomicU64,
    tx: AtomicU64,
    tx_full: AtomicU64,
    bad_desc: AtomicU64,
    kernel_rx_dropped: AtomicU64,
    kernel_rx_ring_full: AtomicU64,
    kernel_fill_ring_empty: AtomicU64,
    kernel_rx_invalid: AtomicU64,
    kernel_tx_invalid: AtomicU64,
    handed_off: AtomicU64,
    outbound_tx: AtomicU64,
    outbound_dropped: AtomicU64,
}

/// A copy of [`WorkerStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStatsSnapshot {
    /// Frames taken off the RX ring.
    pub rx: u64,
    /// Frames the handler answered (put on, or offered to, the TX ring).
    pub replies: u64,
    /// Frames the handler dropped (returned `None` or an impossible length).
    pub dropped: u64,
    /// Replies the kernel reported transmitted (completion ring).
    pub tx: u64,
    /// Replies dropped because the TX ring was full.
    pub tx_full: u64,
    /// RX descriptors that did not describe a frame of the UMEM (dropped).
    pub bad_desc: u64,
    /// Kernel: frames dropped for other reasons (e.g. too large).
    pub kernel_rx_dropped: u64,
    /// Kernel: frames dropped because the RX ring was full.
    pub kernel_rx_ring_full: u64,
    /// Kernel: frames dropped because the fill ring was empty.
    pub kernel_fill_ring_empty: u64,
    /// Kernel: invalid RX descriptors.
    pub kernel_rx_invalid: u64,
    /// Kernel: invalid TX descriptors.
    pub kernel_tx_invalid: u64,
    /// Frames the handler handed off ([`Action::HandedOff`]).
    pub handed_off: u64,
    /// Frames the handler sent that this worker did not receive (queued on the TX ring).
    pub outbound_tx: u64,
    /// Frames the handler wanted to send but could not (no spare frame, TX ring full, too
    /// large).
    pub outbound_dropped: u64,
}

impl WorkerStats {
    /// Reads every counter (each one atomically; the set is not one atomic snapshot).
    pub fn snapshot(&self) -> WorkerStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStatsSnapshot {
            rx: get(&self.rx),
            replies: get(&self.replies),
            dropped: get(&self.dropped),
            tx: get(&self.tx),
            tx_full: get(&self.tx_full),
            bad_desc: get(&self.bad_desc),
            kernel_rx_dropped: get(&self.kernel_rx_dropped),
            kernel_rx_ring_full: get(&self.kernel_rx_ring_full),
            kernel_fill_ring_empty: get(&self.kernel_fill_ring_empty),
            kernel_rx_invalid: get(&self.kernel_rx_invalid),
            kernel_tx_invalid: get(&self.kernel_tx_invalid),
            handed_off: get(&self.handed_off),
            outbound_tx: get(&self.outbound_tx),
            outbound_dropped: get(&self.outbound_dropped),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn store_kernel(&self, s: &XskStatistics) {
        self.kernel_rx_dropped
            .store(s.rx_dropped, Ordering::Relaxed);
        self.kernel_rx_ring_full
            .store(s.rx_ring_full, Ordering::Relaxed);
        self.kernel_fill_ring_empty
            .store(s.rx_fill_ring_empty_descs, Ordering::Relaxed);
        self.kernel_rx_invalid
            .store(s.rx_invalid_descs, Ordering::Relaxed);
        self.kernel_tx_invalid
            .store(s.tx_invalid_descs, Ordering::Relaxed);
    }
}

/// The sentinel of [`CorePin`]'s cells: no core (unpinned).
const NO_CORE: usize = usize::MAX;

/// The core a worker should run on (set from any thread) and the one it runs on (set by the
/// worker), for re-pinning at runtime (`tandem tune cores`).
///
/// The worker reads the wanted core once per loop iteration (at least every
/// [`POLL_TIMEOUT_MS`] when idle) and applies a change to itself: `core_affinity` for a core,
/// all CPUs for `None`.
#[derive(Debug)]
struct CorePin {
    wanted: AtomicUsize,
    current: AtomicUsize,
}

impl CorePin {
    fn new(core: Option<usize>) -> Self {
        let cell = core.unwrap_or(NO_CORE);
        Self {
            wanted: AtomicUsize::new(cell),
            current: AtomicUsize::new(cell),
        }
    }

    fn request(&self, core: Option<usize>) {
        self.wanted
            .store(core.unwrap_or(NO_CORE), Ordering::Relaxed);
    }

    fn current(&self) -> Option<usize> {
        Some(self.current.load(Ordering::Relaxed)).filter(|&c| c != NO_CORE)
    }

    /// On the worker thread: applies the wanted core if it changed since `seen` (the value
    /// last acted upon), recording the core in effect. A core the kernel refuses is logged
    /// and leaves the thread where it was.
    fn apply(&self, seen: &mut usize, queue: u32) {
        let wanted = self.wanted.load(Ordering::Relaxed);
        if wanted == *seen {
            return;
        }
        *seen = wanted;
        let set_size = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        let ok = if wanted == NO_CORE {
            crate::sys::cpu::unpin_current_thread()
        } else {
            // core_affinity indexes a cpu_set_t with the id: keep it in bounds.
            wanted < set_size
                && core_affinity::set_for_current(core_affinity::CoreId { id: wanted })
        };
        if ok {
            self.current.store(wanted, Ordering::Relaxed);
            log::info!(
                "queue {queue}: worker now on {}",
                if wanted == NO_CORE {
                    "any core".to_owned()
                } else {
                    format!("core {wanted}")
                }
            );
        } else {
            log::warn!("queue {queue}: cannot move the worker to core {wanted}; it stays put");
        }
    }
}

/// Why a worker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The AF_XDP socket could not be created or bound.
    #[error(transparent)]
    Xsk(#[from] XskError),
    /// `sched_setaffinity` refused the core.
    #[error(
        "cannot pin the worker of queue {queue} to core {core}: no such core, or not allowed by this process's CPU set"
    )]
    Affinity {
        /// The RX queue.
        queue: u32,
        /// The core asked for.
        core: usize,
    },
    /// The thread could not be created.
    #[error("spawning the worker thread of queue {queue}: {source}")]
    Spawn {
        /// The RX queue.
        queue: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `poll()` on the socket failed.
    #[error("poll() on the AF_XDP socket of queue {queue}: {source}")]
    Poll {
        /// The RX queue.
        queue: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The worker thread panicked.
    #[error("the worker thread of queue {queue} panicked")]
    Panicked {
        /// The RX queue.
        queue: u32,
    },
}

/// What the worker thread reports once its socket exists.
#[derive(Clone, Copy, Debug)]
struct Ready {
    fd: RawFd,
    zero_copy: bool,
}

/// A running worker: its socket's fd, its counters, and the thread to join.
pub struct WorkerHandle {
    queue: u32,
    core: Option<usize>,
    fd: RawFd,
    zero_copy: bool,
    stats: Arc<WorkerStats>,
    pin: Arc<CorePin>,
    thread: JoinHandle<Result<(), WorkerError>>,
}

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("queue", &self.queue)
            .field("core", &self.core)
            .field("fd", &self.fd)
            .field("zero_copy", &self.zero_copy)
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// The RX queue served.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The core the thread was pinned to at start, if any (see [`current_core`]).
    ///
    /// [`current_core`]: Self::current_core
    pub fn core(&self) -> Option<usize> {
        self.core
    }

    /// Asks the worker to move to `core` (`None`: let it run on any core of the process). The
    /// worker applies it on its next loop iteration (within [`POLL_TIMEOUT_MS`] when idle);
    /// [`current_core`](Self::current_core) shows when it has. A core the kernel refuses is
    /// logged by the worker, which stays where it was.
    pub fn set_core(&self, core: Option<usize>) {
        self.pin.request(core);
    }

    /// The core the worker runs on now (`None`: not pinned).
    pub fn current_core(&self) -> Option<usize> {
        self.pin.current()
    }

    /// The AF_XDP socket's fd, for the XSKMAP slot of [`queue`](Self::queue). Owned by the
    /// worker: valid until the worker stops; do not close it.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// `true` if the socket is bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The worker's counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// `true` once the thread has exited (normally only after the stop flag is set).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the thread to exit (set the stop flag first) and returns how it ended.
    pub fn join(self) -> Result<(), WorkerError> {
        let queue = self.queue;
        self.thread
            .join()
            .unwrap_or(Err(WorkerError::Panicked { queue }))
    }
}

/// Starts a worker thread for `config.xsk.queue`: it pins itself (if `config.core`), creates
/// and binds the AF_XDP socket, then serves with `handler` until `stop` is set.
///
/// Returns once the socket exists, with its fd in the handle (store it in the XSKMAP), or with
/// the setup error (no privilege, no such interface, queue out of range …); a thread that
/// failed to set up has already exited.
pub fn spawn(
    config: WorkerConfig,
    handler: impl Handler + Send + 'static,
    stop: Arc<AtomicBool>,
) -> Result<WorkerHandle, WorkerError> {
    let queue = config.xsk.queue;
    let core = config.core;
    let stats = Arc::new(WorkerStats::default());
    let pin = Arc::new(CorePin::new(core));
    let thread_pin = Arc::clone(&pin);
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Ready, WorkerError>>(1);
    let thread_stats = Arc::clone(&stats);
    let thread = std::thread::Builder::new()
        .name(format!("tandem-q{queue}"))
        .spawn(move || {
            let setup = || -> Result<XskSocket, WorkerError> {
                if let Some(core) = config.core
                    && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
                {
                    return Err(WorkerError::Affinity { queue, core });
                }
                Ok(XskSocket::open(&config.xsk)?)
            };
            let xsk = match setup() {
                Ok(xsk) => xsk,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(Ready {
                fd: xsk.fd(),
                zero_copy: xsk.zero_copy(),
            }));
            drop(ready_tx);
            let mut worker = Worker {
                xsk,
                handler,
                stats: thread_stats,
                stop,
                busy_poll: config.busy_poll,
                pin: thread_pin,
                spare: Vec::with_capacity(SPARE_FRAMES),
            };
            worker.run()
        })
        .map_err(|source| WorkerError::Spawn { queue, source })?;

    match ready_rx.recv() {
        Ok(Ok(Ready { fd, zero_copy })) => Ok(WorkerHandle {
            queue,
            core,
            fd,
            zero_copy,
            stats,
            pin,
            thread,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        // The sender was dropped without a message: the thread panicked during setup.
        Err(mpsc::RecvError) => {
            let _ = thread.join();
            Err(WorkerError::Panicked { queue })
        }
    }
}

/// The loop of one queue, on its own thread.
struct Worker<H> {
    xsk: XskSocket,
    handler: H,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    busy_poll: bool,
    pin: Arc<CorePin>,
    /// Frames kept aside for [`Handler::poll_outbound`] (packet-start addresses).
    spare: Vec<u64>,
}

impl<H: Handler> Worker<H> {
    fn run(&mut self) -> Result<(), WorkerError> {
        let mut rx = [Desc::default(); BATCH];
        let mut tx = [Desc::default(); BATCH];
        let mut last_kernel_stats = Instant::now();
        let mut pinned = self.pin.wanted.load(Ordering::Relaxed);
        let result = loop {
            if self.stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            self.pin.apply(&mut pinned, self.xsk.queue());
            let done = self.xsk.complete();
            WorkerStats::add(&self.stats.tx, u64::from(done));
            self.xsk.refill();

            // The loop's one clock read per iteration, shared with the handler.
            let now = Instant::now();
            if now.saturating_duration_since(last_kernel_stats) >= KERNEL_STATS_EVERY {
                self.update_kernel_stats();
                last_kernel_stats = now;
            }

            let outbound = self.serve_outbound(now, &mut tx);
            let n = self.xsk.receive(&mut rx);
            if n == 0 {
                // Copy-mode TX only progresses inside sendto(): finish what a short kick left.
                self.xsk.kick_tx();
                if self.busy_poll {
                    self.xsk.wake_fill_if_needed();
                    std::hint::spin_loop();
                } else if outbound == 0
                    && self.handler.ready_to_sleep()
                    && let Err(source) = self.wait()
                {
                    break Err(WorkerError::Poll {
                        queue: self.xsk.queue(),
                        source,
                    });
                }
                continue;
            }
            self.serve_batch(rx.get(..n).unwrap_or_default(), &mut tx);
        };
        self.update_kernel_stats();
        // Account for replies still completing; whatever is left in the rings is reclaimed
        // when the socket is closed.
        let done = self.xsk.complete();
        WorkerStats::add(&self.stats.tx, u64::from(done));
        result
    }

    /// Blocks until the socket or the handler's wake fd is readable, or [`POLL_TIMEOUT_MS`].
    fn wait(&mut self) -> io::Result<()> {
        let result = match self.handler.wake_fd() {
            None => self.xsk.wait_readable(POLL_TIMEOUT_MS).map(|_| ()),
            Some(wake) => {
                let mut fds = [
                    libc::pollfd {
                        fd: self.xsk.fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: wake,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: `fds` is an array of two valid pollfds, as the count says, borrowed
                // for the duration of the call.
                let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, POLL_TIMEOUT_MS) };
                if rc < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        Ok(())
                    } else {
                        Err(e)
                    }
                } else {
                    Ok(())
                }
            }
        };
        self.handler.woke();
        result
    }

    /// Lets the handler send frames it did not receive, each copied into a spare frame, and
    /// puts them on the TX ring. Returns the handler's count of work items.
    fn serve_outbound(&mut self, now: Instant, tx: &mut [Desc; BATCH]) -> usize {
        let mut queued = 0usize;
        let mut dropped = 0u64;
        let Self {
            xsk,
            handler,
            spare,
            ..
        } = self;
        let work = handler.poll_outbound(now, &mut |bytes: &[u8]| {
            let (Some(slot), Ok(len)) = (tx.get_mut(queued), u32::try_from(bytes.len())) else {
                dropped += 1;
                return false;
            };
            let Some(addr) = spare.pop() else {
                dropped += 1;
                return false;
            };
            let copied = xsk
                .frame_mut(Desc { addr, len: 0 })
                .and_then(|frame| frame.get_mut(..bytes.len()))
                .map(|dst| dst.copy_from_slice(bytes))
                .is_some();
            if copied && len > 0 {
                *slot = Desc { addr, len };
                queued += 1;
                true
            } else {
                spare.push(addr);
                dropped += 1;
                false
            }
        });
        let pending = tx.get(..queued).unwrap_or_default();
        let sent = self.xsk.transmit(pending);
        for d in pending.get(sent..).unwrap_or_default() {
            let _ = self.xsk.release(d.addr);
            dropped += 1;
        }
        if sent > 0 {
            self.xsk.kick_tx();
        }
        WorkerStats::add(
            &self.stats.outbound_tx,
            u64::try_from(sent).unwrap_or(u64::MAX),
        );
        WorkerStats::add(&self.stats.outbound_dropped, dropped);
        work
    }

    /// Handler on each frame, replies to the TX ring, everything else back to the free list.
    fn serve_batch(&mut self, received: &[Desc], tx: &mut [Desc; BATCH]) {
        let (mut replies, mut dropped, mut bad_desc, mut handed_off) = (0u64, 0u64, 0u64, 0u64);
        let mut queued = 0;
        for &desc in received {
            let Some(frame) = self.xsk.frame_mut(desc) else {
                bad_desc += 1;
                // An address outside the UMEM cannot be given back; anything else can.
                let _ = self.xsk.release(desc.addr);
                continue;
            };
            let room = frame.len();
            let len = usize::try_from(desc.len).unwrap_or(usize::MAX);
            match self.handler.handle(frame, len) {
                Action::HandedOff => {
                    handed_off += 1;
                    if self.spare.len() < SPARE_FRAMES {
                        self.spare.push(desc.addr);
                    } else {
                        let _ = self.xsk.release(desc.addr);
                    }
                }
                Action::Reply(reply) if reply > 0 && reply <= room => {
                    if let (Some(slot), Ok(reply)) = (tx.get_mut(queued), u32::try_from(reply)) {
                        *slot = Desc {
                            addr: desc.addr,
                            len: reply,
                        };
                        queued += 1;
                        replies += 1;
                    } else {
                        dropped += 1;
                        let _ = self.xsk.release(desc.addr);
                    }
                }
                _ => {
                    dropped += 1;
                    let _ = self.xsk.release(desc.addr);
                }
            }
        }
        let pending = tx.get(..queued).unwrap_or_default();
        let sent = self.xsk.transmit(pending);
        let mut tx_full = 0u64;
        for d in pending.get(sent..).unwrap_or_default() {
            let _ = self.xsk.release(d.addr);
            tx_full += 1;
        }
        if sent > 0 {
            self.xsk.kick_tx();
        }
        let received = u64::try_from(received.len()).unwrap_or(u64::MAX);
        WorkerStats::add(&self.stats.rx, received);
        WorkerStats::add(&self.stats.replies, replies);
        WorkerStats::add(&self.stats.dropped, dropped);
        WorkerStats::add(&self.stats.bad_desc, bad_desc);
        WorkerStats::add(&self.stats.tx_full, tx_full);
        WorkerStats::add(&self.stats.handed_off, handed_off);
    }

    fn update_kernel_stats(&self) {
        match self.xsk.statistics() {
            Ok(s) => self.stats.store_kernel(&s),
            Err(e) => log::debug!("queue {}: {e}", self.xsk.queue()),
        }
    }
}

/// Why a core list could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreListError {
    /// Nothing between two commas, or an empty list.
    #[error("empty entry in core list {0:?} (expected e.g. `0,1`, `0-3` or `0-1,3`)")]
    Empty(String),
    /// Not a number.
    #[error("{0:?} is not a core number (expected e.g. `0,1`, `0-3` or `0-1,3`)")]
    NotANumber(String),
    /// `a-b` with `a > b`.
    #[error("core range {0:?} runs backwards")]
    Backwards(String),
    /// A core listed twice.
    #[error("core {0} is listed twice")]
    Duplicate(usize),
    /// Absurdly many cores (a typo such as `0-100000`).
    #[error("core list {0:?} names more than 4096 cores")]
    TooMany(String),
}

/// Parses a core list such as `0,1`, `0-3` or `0-1,3` (the `taskset -c` syntax, without
/// strides) into core ids in the order given.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, CoreListError> {
    const MAX_CORES: usize = 4096;
    let number = |t: &str| {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CoreListError::NotANumber(t.to_owned()));
        }
        t.parse::<usize>()
            .map_err(|_| CoreListError::NotANumber(t.to_owned()))
    };
    let mut cores = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(CoreListError::Empty(s.to_owned()));
        }
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if first > last {
            return Err(CoreListError::Backwards(part.to_owned()));
        }
        if last - first >= MAX_CORES || cores.len() + (last - first) >= MAX_CORES {
            return Err(CoreListError::TooMany(s.to_owned()));
        }
        for core in first..=last {
            if cores.contains(&core) {
                return Err(CoreListError::Duplicate(core));
            }
            cores.push(core);
        }
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_forms_parse_in_order() {
        assert_eq!(parse_core_list("0,1"), Ok(vec![0, 1]));
        assert_eq!(parse_core_list("0-3"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_core_list("0-1,3"), Ok(vec![0, 1, 3]));
        assert_eq!(parse_core_list(" 5 , 2-2 "), Ok(vec![5, 2]));
    }

    #[test]
    fn core_list_malformed_entries_rejected() {
        assert!(matches!(parse_core_list(""), Err(CoreListError::Empty(_))));
        assert!(matches!(
            parse_core_list("0,,1"),
            Err(CoreListError::Empty(_))
        ));
        assert!(matches!(
            parse_core_list("a"),
            Err(CoreListError::NotANumber(_))
        ));
        assert!(matches!(
            parse_core_list("-1"),
            Err(CoreListError::NotANumber(_))
        ));
        assert!(matches!(
            parse_core_list("1-"),
            Err(CoreListError::NotANumber(_))
        ));
        assert!(matches!(
            parse_core_list("+1"),
            Err(CoreListError::NotANumber(_))
        ));
        assert_eq!(
            parse_core_list("3-1"),
            Err(CoreListError::Backwards("3-1".into()))
        );
        assert_eq!(parse_core_list("0-2,1"), Err(CoreListError::Duplicate(1)));
        assert!(matches!(
            parse_core_list("0-100000"),
            Err(CoreListError::TooMany(_))
        ));
    }

    #[test]
    fn core_list_error_message_shows_syntax() {
        let msg = parse_core_list("x").unwrap_err().to_string();
        assert!(msg.contains("0-1,3"), "{msg}");
    }

    /// The CPUs the calling thread may run on.
    fn thread_cpus() -> Vec<usize> {
        core_affinity::get_core_ids()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    #[test]
    fn core_pin_change_moves_thread_and_records_core() {
        let allowed = thread_cpus();
        let target = *allowed.last().unwrap();
        let pin = Arc::new(CorePin::new(None));
        let worker_pin = Arc::clone(&pin);
        let (to_worker, requests) = mpsc::channel::<()>();
        let (to_test, replies) = mpsc::channel::<Vec<usize>>();
        let thread = std::thread::spawn(move || {
            let mut seen = NO_CORE;
            while requests.recv().is_ok() {
                worker_pin.apply(&mut seen, 7);
                to_test.send(thread_cpus()).unwrap();
            }
        });
        assert_eq!(pin.current(), None);
        pin.request(Some(target));
        to_worker.send(()).unwrap();
        assert_eq!(replies.recv().unwrap(), vec![target]);
        assert_eq!(pin.current(), Some(target));
        // A core the kernel refuses (or beyond any cpu_set_t) leaves the thread and the record
        // unchanged.
        for refused in [1023, NO_CORE - 1] {
            assert!(!allowed.contains(&refused));
            pin.request(Some(refused));
            to_worker.send(()).unwrap();
            assert_eq!(replies.recv().unwrap(), vec![target]);
            assert_eq!(pin.current(), Some(target));
        }
        // None: back on every allowed CPU.
        pin.request(None);
        to_worker.send(()).unwrap();
        assert_eq!(replies.recv().unwrap(), allowed);
        assert_eq!(pin.current(), None);
        drop(to_worker);
        thread.join().unwrap();
    }

    #[test]
    fn closure_handler_maps_reply_and_drop_without_outbound() {
        let mut h = |frame: &mut [u8], len: usize| (frame.first() == Some(&1)).then_some(len);
        assert_eq!(h.handle(&mut [1, 2], 2), Action::Reply(2));
        assert_eq!(h.handle(&mut [0, 2], 2), Action::Drop);
        let mut calls = 0;
        assert_eq!(
            h.poll_outbound(Instant::now(), &mut |_| {
                calls += 1;
                true
            }),
            0
        );
        assert_eq!(calls, 0);
        assert_eq!(h.wake_fd(), None);
        assert!(h.ready_to_sleep());
    }

    #[test]
    fn closure_handler_reply_written_in_place() {
        let mut echo_longer = |frame: &mut [u8], len: usize| {
            let out = frame.get_mut(len..len + 2)?;
            out.copy_from_slice(b"!!");
            Some(len + 2)
        };
        let mut chunk = [0u8; 8];
        chunk[..3].copy_from_slice(b"abc");
        assert_eq!(echo_longer.handle(&mut chunk, 3), Action::Reply(5));
        assert_eq!(&chunk[..5], b"abc!!");
        assert_eq!(echo_longer.handle(&mut chunk[..4], 3), Action::Drop);
    }
}
