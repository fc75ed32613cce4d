"""A stand-in for the vendor's samna package, for testing dynap's samna bridge without a board.

It records every call in the file named by the environment variable FAKE_SAMNA_LOG (one line each, in
order, so a test can check the vendor's sequence) and
echoes written events back on read (with x_hop + 1, like a route leaving the grid). FAKE_SAMNA_NO_BOARD
makes it see no board; FAKE_SAMNA_DIE_ON_READ makes the process exit on the first read.
"""

import os
import types


def _log(line):
    path = os.environ.get("FAKE_SAMNA_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class _Info:
    device_type_name = "DYNAP-SE2 Stack (fake)"
    serial_number = "FAKE0001"
    usb_bus_number = 1
    usb_device_address = 7


class Dynapse2Destination:
    def __init__(self):
        self.core = [False] * 4
        self.x_hop = 0
        self.y_hop = 0
        self.tag = 0


class NormalGridEvent:
    def __init__(self):
        self.event = Dynapse2Destination()
        self.timestamp = 0


class Dynapse2Configuration:
    def __init__(self):
        self.json = None

    def from_json(self, text):
        self.json = text
        _log("from_json %d" % len(text))


class ResetType:
    PowerCycle = "PowerCycle"
    ConfigReset = "ConfigReset"
    LogicReset = "LogicReset"


class _Model:
    def apply_configuration(self, config):
        _log("apply_configuration %d" % len(config.json or ""))

    def reset(self, kind, chip_mask):
        _log("reset %s %d" % (kind, chip_mask))

    def clear_error_queue(self):
        _log("clear_error_queue")


class _Board:
    def __init__(self):
        self.pending = []

    def configure_opal_kelly(self, bitfile):
        _log("configure_opal_kelly %s" % bitfile)
        return os.path.exists(bitfile)

    def reset_fpga(self):
        _log("reset_fpga")

    def get_model(self):
        _log("get_model")
        return _Model()

    def grid_bus_write_events(self, events):
        _log("grid_bus_write_events %d" % len(events))
        for e in events:
            back = NormalGridEvent()
            back.event.core = list(e.event.core)
            back.event.x_hop = e.event.x_hop + 1
            back.event.y_hop = e.event.y_hop
            back.event.tag = e.event.tag
            back.timestamp = e.timestamp
            self.pending.append(back)

    def read_events(self):
        if os.environ.get("FAKE_SAMNA_DIE_ON_READ"):
            _log("dying")
            os._exit(3)  # the board (or samna) goes away in the middle of a run
        out, self.pending = self.pending, []
        _log("read_events %d" % len(out))
        return out


def _get_all_devices():
    _log("get_all_devices")
    return [] if os.environ.get("FAKE_SAMNA_NO_BOARD") else [_Info()]


def _open_device(info):
    _log("open_device %s" % info.serial_number)
    return _Board()


def _close_device(board):
    _log("close_device")


device = types.SimpleNamespace(
    get_all_devices=_get_all_devices, open_device=_open_device, close_device=_close_device
)
dynapse2 = types.SimpleNamespace(
    ResetType=ResetType,
    Dynapse2Configuration=Dynapse2Configuration,
    Dynapse2Destination=Dynapse2Destination,
    NormalGridEvent=NormalGridEvent,
)
