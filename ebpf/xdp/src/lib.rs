//! Library target of `tandem-xdp`, empty on purpose: it lets `tandem-datapath` list this crate as
//! a build-dependency, so cargo re-runs the build script that compiles the XDP program (the
//! binary target, `src/main.rs`) whenever its sources change (aya-template pattern).
#![no_std]
