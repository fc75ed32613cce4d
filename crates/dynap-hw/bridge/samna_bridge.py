#!/usr/bin/env python3
"""dynap's samna bridge: drives a DYNAP-SE2 board through the vendor's samna package on behalf of
the Rust `dynap-hw` crate (`SamnaBridge` transport), over stdin/stdout.

Our own program; it uses only samna's public Python API (as documented by SynSense and used by
Rockpool and community scripts: `samna.device.get_all_devices`, `open_device`, `close_device`,
`configure_opal_kelly`, `reset_fpga`, `get_model`, `reset` with `dynapse2.ResetType`,
`clear_error_queue`, `apply_configuration`, `Dynapse2Configuration.from_json`, `NormalGridEvent`,
`grid_bus_write_events`, `read_events`).

The vendor's flow, which OPEN follows: open the board; upload the FPGA bitstream
(`configure_opal_kelly` with the `Dynapse2Stack.bit` bitfile, which Rockpool's source tree carries
and its package does not install: the user names it) and reset the FPGA, 0.1 s apart; take the
model; power-cycle and reset the chips' configuration; clear the error queue. APPLY clears the error
queue before it applies; RESET resets the chips' logic (flushing their event buffers) and drains the
events; CLOSE closes the device.

Protocol (all integers little-endian). A request is `op: u8, length: u32, payload`; a reply is
`status: u8, length: u32, payload`; status 0 is success, 1 an error, 2 an error because samna cannot
be imported (on error, the payload is a UTF-8 message: the exception's type and text).

  op 1 OPEN   payload: JSON {"device": name filter (e.g. "DYNAP-SE2"), "bitfile": path or null,
              "chips": chips on the board}                       -> payload: UTF-8 description
  op 2 APPLY  payload: samna configuration JSON (UTF-8)              -> empty
  op 3 WRITE  payload: events, 8 bytes each (dynap's wire format)    -> empty
  op 4 READ   payload: empty                                          -> events, 8 bytes each
  op 5 RESET  payload: empty                                          -> empty
  op 6 CLOSE  payload: empty                                          -> empty, then the bridge exits

Event wire format (8 bytes): u32 word = tag (bits 0..11) | core mask (11..15) | x_hop + 7 (15..19) |
y_hop + 7 (19..23); then u32 timestamp in microseconds.
"""

import json
import struct
import sys
import time


def decode_events(payload):
    out = []
    for i in range(0, len(payload), 8):
        word, ts = struct.unpack_from("<II", payload, i)
        out.append((word & 0x7FF, (word >> 11) & 0xF, ((word >> 15) & 0xF) - 7, ((word >> 19) & 0xF) - 7, ts))
    return out


def encode_events(events):
    out = bytearray()
    for tag, core, x, y, ts in events:
        word = (tag & 0x7FF) | (core & 0xF) << 11 | ((x + 7) & 0xF) << 15 | ((y + 7) & 0xF) << 19
        out += struct.pack("<II", word, ts & 0xFFFFFFFF)
    return bytes(out)


class Bridge:
    def __init__(self):
        import samna  # noqa: F401  (imported here so that a missing samna is a clear error reply)

        self.samna = samna
        self.board = None
        self.model = None

    def open(self, request):
        name = request.get("device") or "DYNAP-SE2"
        bitfile = request.get("bitfile")
        chips = int(request.get("chips") or 1)
        self.chip_mask = (1 << chips) - 1
        devices = [d for d in self.samna.device.get_all_devices() if name.upper() in d.device_type_name.upper()]
        if not devices:
            raise RuntimeError("samna sees no %s board" % name)
        self.board = self.samna.device.open_device(devices[0])
        if bitfile:
            # The FPGA bitstream, as the vendor's flow uploads it every time the board is opened.
            if not self.board.configure_opal_kelly(bitfile):
                raise IOError("the FPGA did not take the bitfile %s" % bitfile)
            time.sleep(0.1)
            self.board.reset_fpga()
            time.sleep(0.1)
        self.model = self.board.get_model()
        reset = self.samna.dynapse2.ResetType
        self.model.reset(reset.PowerCycle, self.chip_mask)
        self.model.reset(reset.ConfigReset, self.chip_mask)
        self.model.clear_error_queue()
        d = devices[0]
        return "%s serial %s (usb bus %s address %s)" % (
            d.device_type_name, d.serial_number, d.usb_bus_number, d.usb_device_address)

    def need_board(self):
        if self.board is None:
            raise RuntimeError("no board open (send OPEN first)")

    def apply(self, text):
        self.need_board()
        config = self.samna.dynapse2.Dynapse2Configuration()
        config.from_json(text)
        self.model.clear_error_queue()
        self.model.apply_configuration(config)
        time.sleep(0.1)  # the chips settle (the vendor's examples wait 0.1 to 1 s)

    def write(self, events):
        self.need_board()
        samna_events = []
        for tag, core, x, y, ts in events:
            e = self.samna.dynapse2.NormalGridEvent()
            d = self.samna.dynapse2.Dynapse2Destination()
            d.core = [bool(core >> k & 1) for k in range(4)]
            d.x_hop = x
            d.y_hop = y
            d.tag = tag
            e.event = d
            e.timestamp = ts
            samna_events.append(e)
        self.board.grid_bus_write_events(samna_events)

    def read(self):
        self.need_board()
        out = []
        for e in self.board.read_events():
            d = e.event
            core = sum(1 << k for k, b in enumerate(d.core) if b)
            out.append((d.tag, core, d.x_hop, d.y_hop, e.timestamp))
        return out

    def reset(self):
        self.need_board()
        self.model.reset(self.samna.dynapse2.ResetType.LogicReset, self.chip_mask)
        self.board.read_events()  # drain
        self.model.clear_error_queue()

    def close(self):
        if self.board is not None:
            self.samna.device.close_device(self.board)
            self.board = None
            self.model = None


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    bridge = None
    while True:
        header = stdin.read(5)
        if len(header) < 5:
            return 0  # the host went away
        op, length = struct.unpack("<BI", header)
        payload = stdin.read(length)
        try:
            if bridge is None:
                bridge = Bridge()
            if op == 1:
                text = payload.decode()
                try:
                    request = json.loads(text)
                except ValueError:
                    request = {"device": text}  # an older host: the name alone
                reply = bridge.open(request).encode()
            elif op == 2:
                bridge.apply(payload.decode())
                reply = b""
            elif op == 3:
                bridge.write(decode_events(payload))
                reply = b""
            elif op == 4:
                reply = encode_events(bridge.read())
            elif op == 5:
                bridge.reset()
                reply = b""
            elif op == 6:
                bridge.close()
                stdout.write(struct.pack("<BI", 0, 0))
                stdout.flush()
                return 0
            else:
                raise RuntimeError("unknown request %d" % op)
            stdout.write(struct.pack("<BI", 0, len(reply)) + reply)
        except Exception as exc:  # every failure goes back to the host as a message
            message = ("%s: %s" % (type(exc).__name__, exc)).encode()
            status = 2 if isinstance(exc, ImportError) else 1
            stdout.write(struct.pack("<BI", status, len(message)) + message)
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
