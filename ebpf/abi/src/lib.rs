//! Placeholder; see the datapath helper.
#![no_std]
