//! Small safe seams over the system calls the daemon needs besides its datapaths: signals,
//! eventfd wake-ups, the process's CPU set, seed randomness, a TCP connect from a chosen
//! address, and durable file replacement. Each function wraps one
//! system call (or a fixed sequence of them); the `unsafe` stays here.

pub mod cpu;
pub mod eventfd;
pub mod random;
pub mod signal;
pub mod tcp;
