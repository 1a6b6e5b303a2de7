-- Wireshark dissector for the DHCPv6 Failover Protocol (RFC 8156) on TCP port 647.
--
-- Wireshark has none: it decodes port 647 as the old DHCPv4 failover draft, every frame
-- malformed. Load this file with
--     wireshark -X lua_script:contrib/wireshark/dhcpv6_failover.lua
--     tshark    -X lua_script:contrib/wireshark/dhcpv6_failover.lua -r capture.pcap -V
-- or copy it into ~/.local/lib/wireshark/plugins/. It takes TCP port 647 from the built-in
-- DHCPv4 failover dissector.
--
-- What it decodes:
--   * the RFC 5460 §5.1 framing (2-octet message length; messages reassembled across TCP
--     segments, several per segment);
--   * the header: msg-type, transaction-id and, for failover messages (24..35), sent-time
--     (RFC 8156 §5.2). STARTTLS (23) and its REPLY (7) carry no sent-time (RFC 7653 §6.1);
--   * every option RFC 8156 uses, nested: OPTION_CLIENT_DATA and the IA options with their
--     IAADDR / IAPREFIX, status codes 0-22, binding status, server state and flags, times as
--     RFC 8156 §3 absolute times (seconds since 2000-01-01 UTC), connect parameters.
-- Anything that does not fit is flagged with an expert item: "malformed" (PI_MALFORMED) for a
-- length that runs past its container or a field of the wrong size, "unknown" (PI_UNDECODED)
-- for a message type or option code this dissector does not know. The project's CI fails on
-- either (hwtest: netns_wireshark_dissector).

local p = Proto("dhcpv6fo", "DHCPv6 Failover (RFC 8156)")

local EPOCH_2000 = 946684800

local msg_types = {
    [7] = "REPLY", [23] = "STARTTLS", [24] = "BNDUPD", [25] = "BNDREPLY", [26] = "POOLREQ",
    [27] = "POOLRESP", [28] = "UPDREQ", [29] = "UPDREQALL", [30] = "UPDDONE",
    [31] = "CONNECT", [32] = "CONNECTREPLY", [33] = "DISCONNECT", [34] = "STATE",
    [35] = "CONTACT",
}

local status_codes = {
    [0] = "Success", [1] = "UnspecFail", [2] = "NoAddrsAvail", [3] = "NoBinding",
    [4] = "NotOnLink", [5] = "UseMulticast", [6] = "NoPrefixAvail", [7] = "UnknownQueryType",
    [8] = "MalformedQuery", [9] = "NotConfigured", [10] = "NotAllowed", [11] = "QueryTerminated",
    [12] = "DataMissing", [13] = "CatchUpComplete", [14] = "NotSupported",
    [15] = "TLSConnectionRefused", [16] = "AddressInUse", [17] = "ConfigurationConflict",
    [18] = "MissingBindingInformation", [19] = "OutdatedBindingInformation",
    [20] = "ServerShuttingDown", [21] = "DNSUpdateNotSupported", [22] = "ExcessiveTimeSkew",
}

local binding_status = {
    [1] = "ACTIVE", [2] = "EXPIRED", [3] = "RELEASED", [4] = "PENDING-FREE", [5] = "FREE",
    [6] = "FREE-BACKUP", [7] = "ABANDONED", [8] = "RESET",
}

local server_states = {
    [1] = "STARTUP", [2] = "NORMAL", [3] = "COMMUNICATIONS-INTERRUPTED", [4] = "PARTNER-DOWN",
    [5] = "POTENTIAL-CONFLICT", [6] = "RECOVER", [7] = "RECOVER-WAIT", [8] = "RECOVER-DONE",
    [9] = "RESOLUTION-INTERRUPTED", [10] = "CONFLICT-DONE",
}

-- Option codes, names, and how their data is laid out.
local O = {
    CLIENTID = 1, SERVERID = 2, IA_NA = 3, IAADDR = 5, STATUS_CODE = 13, INTERFACE_ID = 18,
    IA_PD = 25, IAPREFIX = 26, CLIENT_FQDN = 39, CLIENT_DATA = 45, CLT_TIME = 46,
    LQ_RELAY_DATA = 47, VSS = 68, LQ_BASE_TIME = 100,
}
local option_names = {
    [1] = "OPTION_CLIENTID", [2] = "OPTION_SERVERID", [3] = "OPTION_IA_NA",
    [5] = "OPTION_IAADDR", [13] = "OPTION_STATUS_CODE", [18] = "OPTION_INTERFACE_ID",
    [25] = "OPTION_IA_PD", [26] = "OPTION_IAPREFIX", [39] = "OPTION_CLIENT_FQDN",
    [45] = "OPTION_CLIENT_DATA", [46] = "OPTION_CLT_TIME", [47] = "OPTION_LQ_RELAY_DATA",
    [68] = "OPTION_VSS", [100] = "OPTION_LQ_BASE_TIME",
    [114] = "OPTION_F_BINDING_STATUS", [115] = "OPTION_F_CONNECT_FLAGS",
    [116] = "OPTION_F_DNS_REMOVAL_INFO", [117] = "OPTION_F_DNS_HOST_NAME",
    [118] = "OPTION_F_DNS_ZONE_NAME", [119] = "OPTION_F_DNS_FLAGS",
    [120] = "OPTION_F_EXPIRATION_TIME", [121] = "OPTION_F_MAX_UNACKED_BNDUPD",
    [122] = "OPTION_F_MCLT", [123] = "OPTION_F_PARTNER_LIFETIME",
    [124] = "OPTION_F_PARTNER_LIFETIME_SENT", [125] = "OPTION_F_PARTNER_DOWN_TIME",
    [126] = "OPTION_F_PARTNER_RAW_CLT_TIME", [127] = "OPTION_F_PROTOCOL_VERSION",
    [128] = "OPTION_F_KEEPALIVE_TIME", [129] = "OPTION_F_RECONFIGURE_DATA",
    [130] = "OPTION_F_RELATIONSHIP_NAME", [131] = "OPTION_F_SERVER_FLAGS",
    [132] = "OPTION_F_SERVER_STATE", [133] = "OPTION_F_START_TIME_OF_STATE",
    [134] = "OPTION_F_STATE_EXPIRATION_TIME",
}

local f = {
    length = ProtoField.uint16("dhcpv6fo.length", "Message length", base.DEC),
    msg_type = ProtoField.uint8("dhcpv6fo.msg_type", "Message type", base.DEC, msg_types),
    xid = ProtoField.uint24("dhcpv6fo.xid", "Transaction ID", base.HEX),
    sent_time = ProtoField.uint32("dhcpv6fo.sent_time", "Sent time", base.DEC),
    option = ProtoField.bytes("dhcpv6fo.option", "Option"),
    opt_code = ProtoField.uint16("dhcpv6fo.option.code", "Option code", base.DEC, option_names),
    opt_len = ProtoField.uint16("dhcpv6fo.option.length", "Option length", base.DEC),
    opt_data = ProtoField.bytes("dhcpv6fo.option.data", "Data"),
    duid = ProtoField.bytes("dhcpv6fo.duid", "DUID"),
    iaid = ProtoField.uint32("dhcpv6fo.iaid", "IAID", base.HEX),
    t1 = ProtoField.uint32("dhcpv6fo.t1", "T1", base.DEC),
    t2 = ProtoField.uint32("dhcpv6fo.t2", "T2", base.DEC),
    addr = ProtoField.ipv6("dhcpv6fo.address", "Address"),
    prefix = ProtoField.ipv6("dhcpv6fo.prefix", "Prefix"),
    prefix_len = ProtoField.uint8("dhcpv6fo.prefix_length", "Prefix length", base.DEC),
    preferred = ProtoField.uint32("dhcpv6fo.preferred", "Preferred lifetime", base.DEC),
    valid = ProtoField.uint32("dhcpv6fo.valid", "Valid lifetime", base.DEC),
    status = ProtoField.uint16("dhcpv6fo.status", "Status code", base.DEC, status_codes),
    status_msg = ProtoField.string("dhcpv6fo.status_message", "Status message"),
    binding_status = ProtoField.uint8("dhcpv6fo.binding_status", "Binding status", base.DEC,
        binding_status),
    server_state = ProtoField.uint8("dhcpv6fo.server_state", "Server state", base.DEC,
        server_states),
    server_flags = ProtoField.uint8("dhcpv6fo.server_flags", "Server flags", base.HEX),
    flag_startup = ProtoField.bool("dhcpv6fo.server_flags.startup", "STARTUP", 8, nil, 0x02),
    flag_communicated = ProtoField.bool("dhcpv6fo.server_flags.communicated", "COMMUNICATED", 8,
        nil, 0x01),
    flag_ack_startup = ProtoField.bool("dhcpv6fo.server_flags.ack_startup", "ACK_STARTUP", 8,
        nil, 0x04),
    connect_flags = ProtoField.uint16("dhcpv6fo.connect_flags", "Connect flags", base.HEX),
    flag_fixed_pd = ProtoField.bool("dhcpv6fo.connect_flags.fixed_pd_length",
        "FIXED_PD_LENGTH", 16, nil, 0x0001),
    dns_flags = ProtoField.uint16("dhcpv6fo.dns_flags", "DNS flags", base.HEX),
    seconds = ProtoField.uint32("dhcpv6fo.seconds", "Seconds", base.DEC),
    time = ProtoField.uint32("dhcpv6fo.time", "Time (s since 2000-01-01 UTC)", base.DEC),
    count = ProtoField.uint32("dhcpv6fo.count", "Count", base.DEC),
    version_major = ProtoField.uint16("dhcpv6fo.version.major", "Major version", base.DEC),
    version_minor = ProtoField.uint16("dhcpv6fo.version.minor", "Minor version", base.DEC),
    name = ProtoField.string("dhcpv6fo.name", "Name"),
    key = ProtoField.bytes("dhcpv6fo.reconfigure_key", "Reconfigure key"),
    peer = ProtoField.ipv6("dhcpv6fo.peer_address", "Peer address"),
    relay_msg = ProtoField.bytes("dhcpv6fo.relay_message", "Relay message"),
    fqdn_flags = ProtoField.uint8("dhcpv6fo.fqdn_flags", "FQDN flags", base.HEX),
    vss_type = ProtoField.uint8("dhcpv6fo.vss_type", "VSS type", base.DEC),
    bytes = ProtoField.bytes("dhcpv6fo.bytes", "Bytes"),
}
local field_list = {}
for _, v in pairs(f) do field_list[#field_list + 1] = v end
p.fields = field_list

local ef_malformed = ProtoExpert.new("dhcpv6fo.malformed", "Malformed DHCPv6 failover data",
    expert.group.MALFORMED, expert.severity.ERROR)
local ef_unknown = ProtoExpert.new("dhcpv6fo.unknown", "Unknown DHCPv6 failover field",
    expert.group.UNDECODED, expert.severity.WARN)
p.experts = { ef_malformed, ef_unknown }

local function time_text(v)
    if v == 0 then return "not set" end
    return os.date("!%Y-%m-%d %H:%M:%S UTC", EPOCH_2000 + v)
end

-- `range`: a 4-octet TvbRange holding an RFC 8156 §3 time.
local function add_time(tree, range)
    local v = range:uint()
    tree:add(f.time, range):append_text(" (" .. time_text(v) .. ")")
end

-- A DNS name in RFC 1035 wire form (uncompressed), as text; nil if malformed.
local function dns_name(tvb)
    local i, n, labels = 0, tvb:len(), {}
    while i < n do
        local l = tvb(i, 1):uint()
        if l == 0 then
            if i + 1 ~= n then return nil end
            return table.concat(labels, ".") .. "."
        end
        if l > 63 or i + 1 + l > n then return nil end
        labels[#labels + 1] = tvb(i + 1, l):string()
        i = i + 1 + l
    end
    return table.concat(labels, ".")
end

local dissect_options

local function need(tree, tvb, len, what)
    if tvb:len() ~= len then
        tree:add_proto_expert_info(ef_malformed, what .. ": expected " .. len .. " octets, got "
            .. tvb:len())
        return false
    end
    return true
end

local function at_least(tree, tvb, len, what)
    if tvb:len() < len then
        tree:add_proto_expert_info(ef_malformed, what .. ": at least " .. len .. " octets needed")
        return false
    end
    return true
end

-- Decodes the data of one option into `tree`.
local function dissect_option_data(code, tvb, tree, pinfo)
    local len = tvb:len()
    if code == O.CLIENTID or code == O.SERVERID then
        if at_least(tree, tvb, 3, "DUID") then tree:add(f.duid, tvb()) end
    elseif code == O.CLIENT_DATA then
        dissect_options(tvb, tree, pinfo)
    elseif code == O.IA_NA or code == O.IA_PD then
        if at_least(tree, tvb, 12, "IA") then
            tree:add(f.iaid, tvb(0, 4))
            tree:add(f.t1, tvb(4, 4))
            tree:add(f.t2, tvb(8, 4))
            if len > 12 then dissect_options(tvb(12):tvb(), tree, pinfo) end
        end
    elseif code == O.IAADDR then
        if at_least(tree, tvb, 24, "IAADDR") then
            tree:add(f.addr, tvb(0, 16))
            tree:add(f.preferred, tvb(16, 4))
            tree:add(f.valid, tvb(20, 4))
            if len > 24 then dissect_options(tvb(24):tvb(), tree, pinfo) end
        end
    elseif code == O.IAPREFIX then
        if at_least(tree, tvb, 25, "IAPREFIX") then
            tree:add(f.preferred, tvb(0, 4))
            tree:add(f.valid, tvb(4, 4))
            tree:add(f.prefix_len, tvb(8, 1))
            tree:add(f.prefix, tvb(9, 16))
            if tvb(8, 1):uint() > 128 then
                tree:add_proto_expert_info(ef_malformed, "prefix length above 128")
            end
            if len > 25 then dissect_options(tvb(25):tvb(), tree, pinfo) end
        end
    elseif code == O.STATUS_CODE then
        if at_least(tree, tvb, 2, "status code") then
            tree:add(f.status, tvb(0, 2))
            if status_codes[tvb(0, 2):uint()] == nil then
                tree:add_proto_expert_info(ef_unknown, "unknown status code " .. tvb(0, 2):uint())
            end
            if len > 2 then tree:add(f.status_msg, tvb(2)) end
        end
    elseif code == O.INTERFACE_ID then
        tree:add(f.bytes, tvb())
    elseif code == O.CLIENT_FQDN then
        if at_least(tree, tvb, 1, "client FQDN") then
            tree:add(f.fqdn_flags, tvb(0, 1))
            if len > 1 then
                local n = dns_name(tvb(1):tvb())
                if n == nil then
                    tree:add_proto_expert_info(ef_malformed, "domain name")
                else
                    tree:add(f.name, tvb(1), n)
                end
            end
        end
    elseif code == O.CLT_TIME then
        if need(tree, tvb, 4, "OPTION_CLT_TIME") then tree:add(f.seconds, tvb()) end
    elseif code == O.LQ_RELAY_DATA then
        if at_least(tree, tvb, 16, "OPTION_LQ_RELAY_DATA") then
            tree:add(f.peer, tvb(0, 16))
            if len > 16 then
                local dhcpv6 = Dissector.get("dhcpv6")
                local sub = tree:add(f.relay_msg, tvb(16))
                if dhcpv6 ~= nil then dhcpv6:call(tvb(16):tvb(), pinfo, sub) end
            end
        end
    elseif code == O.VSS then
        if at_least(tree, tvb, 1, "OPTION_VSS") then
            tree:add(f.vss_type, tvb(0, 1))
            if len > 1 then tree:add(f.bytes, tvb(1)) end
        end
    elseif code == O.LQ_BASE_TIME or code == 120 or (code >= 123 and code <= 126)
        or code == 133 or code == 134 then
        if need(tree, tvb, 4, option_names[code]) then add_time(tree, tvb()) end
    elseif code == 114 then
        if need(tree, tvb, 1, "OPTION_F_BINDING_STATUS") then
            tree:add(f.binding_status, tvb())
            if binding_status[tvb():uint()] == nil then
                tree:add_proto_expert_info(ef_unknown, "unknown binding status " .. tvb():uint())
            end
        end
    elseif code == 115 then
        if need(tree, tvb, 2, "OPTION_F_CONNECT_FLAGS") then
            local t = tree:add(f.connect_flags, tvb())
            t:add(f.flag_fixed_pd, tvb())
        end
    elseif code == 116 then
        dissect_options(tvb, tree, pinfo)
    elseif code == 117 or code == 118 then
        local n = len > 0 and dns_name(tvb) or nil
        if n == nil then
            tree:add_proto_expert_info(ef_malformed, "domain name")
        else
            tree:add(f.name, tvb(), n)
        end
    elseif code == 119 then
        if need(tree, tvb, 2, "OPTION_F_DNS_FLAGS") then tree:add(f.dns_flags, tvb()) end
    elseif code == 121 then
        if need(tree, tvb, 4, "OPTION_F_MAX_UNACKED_BNDUPD") then tree:add(f.count, tvb()) end
    elseif code == 122 or code == 128 then
        if need(tree, tvb, 4, option_names[code]) then tree:add(f.seconds, tvb()) end
    elseif code == 127 then
        if need(tree, tvb, 4, "OPTION_F_PROTOCOL_VERSION") then
            tree:add(f.version_major, tvb(0, 2))
            tree:add(f.version_minor, tvb(2, 2))
        end
    elseif code == 129 then
        if at_least(tree, tvb, 4, "OPTION_F_RECONFIGURE_DATA") then
            add_time(tree, tvb(0, 4))
            if len > 4 then tree:add(f.key, tvb(4)) end
        end
    elseif code == 130 then
        tree:add(f.name, tvb())
    elseif code == 131 then
        if need(tree, tvb, 1, "OPTION_F_SERVER_FLAGS") then
            local t = tree:add(f.server_flags, tvb())
            t:add(f.flag_ack_startup, tvb())
            t:add(f.flag_startup, tvb())
            t:add(f.flag_communicated, tvb())
        end
    elseif code == 132 then
        if need(tree, tvb, 1, "OPTION_F_SERVER_STATE") then
            tree:add(f.server_state, tvb())
            if server_states[tvb():uint()] == nil then
                tree:add_proto_expert_info(ef_unknown, "unknown server state " .. tvb():uint())
            end
        end
    else
        tree:add(f.opt_data, tvb())
        tree:add_proto_expert_info(ef_unknown, "unknown option code " .. code)
    end
end

-- Decodes a block of options (code, length, data) filling `tvb` exactly.
dissect_options = function(tvb, tree, pinfo)
    local off, n = 0, tvb:len()
    while off < n do
        if n - off < 4 then
            tree:add_proto_expert_info(ef_malformed, "truncated option header")
            return
        end
        local code = tvb(off, 2):uint()
        local len = tvb(off + 2, 2):uint()
        if off + 4 + len > n then
            local t = tree:add(f.option, tvb(off))
            t:set_text((option_names[code] or ("option " .. code)) .. ": length " .. len
                .. " runs past its container")
            t:add_proto_expert_info(ef_malformed, "option length runs past its container")
            return
        end
        local t = tree:add(f.option, tvb(off, 4 + len))
        t:set_text(option_names[code] or ("Unknown option " .. code))
        t:add(f.opt_code, tvb(off, 2))
        t:add(f.opt_len, tvb(off + 2, 2))
        if len > 0 then
            dissect_option_data(code, tvb(off + 4, len):tvb(), t, pinfo)
        elseif option_names[code] == nil then
            t:add_proto_expert_info(ef_unknown, "unknown option code " .. code)
        elseif code ~= O.CLIENT_DATA and code ~= 116 and code ~= 130 then
            -- Only encapsulating options and the relationship name may be empty.
            t:add_proto_expert_info(ef_malformed, "empty " .. option_names[code])
        end
        off = off + 4 + len
    end
end

-- One message (without the 2-octet length).
local function dissect_message(tvb, pinfo, tree)
    local n = tvb:len()
    if n < 4 then
        tree:add_proto_expert_info(ef_malformed, "message shorter than its header")
        return
    end
    local t = tvb(0, 1):uint()
    tree:add(f.msg_type, tvb(0, 1))
    tree:add(f.xid, tvb(1, 3))
    local name = msg_types[t]
    if name == nil then
        -- Its layout is unknown (with or without sent-time?): show the bytes, decode nothing.
        tree:add_proto_expert_info(ef_unknown, "unknown message type " .. t)
        pinfo.cols.info:append("type " .. t .. " ")
        if n > 4 then tree:add(f.bytes, tvb(4)) end
        return
    end
    tree:append_text(", " .. name)
    pinfo.cols.info:append(name .. " ")
    local opts = 4
    if t >= 24 and t <= 35 then
        if n < 8 then
            tree:add_proto_expert_info(ef_malformed, "failover message shorter than 8 octets")
            return
        end
        local st = tvb(4, 4):uint()
        tree:add(f.sent_time, tvb(4, 4)):append_text(" (" .. time_text(st) .. ")")
        opts = 8
    end
    if n > opts then dissect_options(tvb(opts):tvb(), tree, pinfo) end
end

local function pdu_len(tvb, pinfo, offset)
    return tvb(offset, 2):uint() + 2
end

local function dissect_pdu(tvb, pinfo, root)
    pinfo.cols.protocol = "DHCPv6-FO"
    local tree = root:add(p, tvb())
    tree:add(f.length, tvb(0, 2))
    if tvb:len() > 2 then dissect_message(tvb(2):tvb(), pinfo, tree) else
        tree:add_proto_expert_info(ef_malformed, "empty message")
    end
    return tvb:len()
end

function p.dissector(tvb, pinfo, root)
    pinfo.cols.info:clear()
    dissect_tcp_pdus(tvb, root, 2, pdu_len, dissect_pdu, true)
    return tvb:len()
end

DissectorTable.get("tcp.port"):add(647, p)
