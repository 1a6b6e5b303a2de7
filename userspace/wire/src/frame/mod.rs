//! Ethernet, 802.1Q/QinQ, IPv6 and UDP framing for the AF_XDP datapath.
