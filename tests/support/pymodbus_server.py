#!/usr/bin/python3
"""pymodbus 3.0 TCP server: the independent Modbus implementation for ioc-edge's tests.

Started by PymodbusServer (tests/support/pymodbus_server.cpp) as
    /usr/bin/python3 pymodbus_server.py --port PORT --registers FILE
and stopped with SIGTERM. Serves 127.0.0.1:PORT with zero_mode=True (protocol address 0 is the
first value of a table, not the second as pymodbus's default would have it):
    unit 1: the tables from FILE, TABLE_SIZE entries each, zero where FILE says nothing;
    unit 2: the same layout, every holding and input register value + 1000 (mod 65536);
            coils and discrete inputs as unit 1.
Other unit ids are not answered (pymodbus's framer drops them).

FILE is JSON: {"holding": {"0": [1, 2, 3]}, "input": {"100": [17096, 0]},
               "coils": {"0": [1, 0, 1]}, "discrete": {"5": [true]}}
A malformed FILE ends the process with exit code 2 and a message naming the problem.

Needs Debian's python3-pymodbus 3.0 (with python3-serial and python3-serial-asyncio).
"""

import argparse
import asyncio
import json
import logging
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncTcpServer

TABLE_SIZE = 10000  # as kModbusTableSize in modbus_peers.h
UNIT2_OFFSET = 1000
TABLES = {"holding": "hr", "input": "ir", "coils": "co", "discrete": "di"}
BIT_TABLES = ("coils", "discrete")

log = logging.getLogger("pymodbus_server")


class RegistersError(Exception):
    """The registers file is not what the header of this file describes."""


def load_tables(path):
    """Return {table name: list of TABLE_SIZE values} from the JSON file at path."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        raise RegistersError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise RegistersError(f"{path}: expected a JSON object at the top")
    unknown = sorted(set(doc) - set(TABLES))
    if unknown:
        raise RegistersError(f"{path}: unknown table(s) {unknown}; known: {sorted(TABLES)}")

    tables = {name: [0] * TABLE_SIZE for name in TABLES}
    for name, ranges in doc.items():
        if not isinstance(ranges, dict):
            raise RegistersError(f'{path}: "{name}" must map start addresses to arrays')
        limit = 1 if name in BIT_TABLES else 65535
        for start_text, values in ranges.items():
            where = f'{path}: "{name}" "{start_text}"'
            try:
                start = int(start_text, 10)
            except ValueError as exc:
                raise RegistersError(f"{where}: the address must be a decimal number") from exc
            if not isinstance(values, list):
                raise RegistersError(f"{where}: expected an array of values")
            if start < 0 or start + len(values) > TABLE_SIZE:
                raise RegistersError(f"{where}: {len(values)} values do not fit in 0..{TABLE_SIZE - 1}")
            for i, value in enumerate(values):
                if isinstance(value, bool):
                    value = int(value)
                if not isinstance(value, int) or not 0 <= value <= limit:
                    raise RegistersError(f"{where}: value {i} ({values[i]!r}) is not in 0..{limit}")
                tables[name][start + i] = value
    return tables


def slave_context(tables):
    blocks = {TABLES[name]: ModbusSequentialDataBlock(0, values) for name, values in tables.items()}
    return ModbusSlaveContext(zero_mode=True, **blocks)


def unit2_tables(tables):
    out = {}
    for name, values in tables.items():
        if name in BIT_TABLES:
            out[name] = list(values)
        else:
            out[name] = [(v + UNIT2_OFFSET) % 65536 for v in values]
    return out


async def serve(port, tables):
    context = ModbusServerContext(
        slaves={1: slave_context(tables), 2: slave_context(unit2_tables(tables))}, single=False
    )
    # defer_start returns the server object, so that a failed bind ends serve_forever() with an
    # exception (and this process with it) instead of being logged by an orphaned task.
    server = await StartAsyncTcpServer(
        context=context, address=("127.0.0.1", port), defer_start=True, allow_reuse_address=True
    )
    task = asyncio.create_task(server.serve_forever())
    done, _ = await asyncio.wait({task, server.serving}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the bind error
        return
    log.info("serving units 1 and 2 on 127.0.0.1:%d", port)
    await task


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--registers", required=True, help="JSON file with the initial tables")
    args = parser.parse_args()
    # pymodbus 3.0.0rc1 calls logging.basicConfig() when imported (pymodbus/constants.py): force ours.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
    )
    # It logs every client disconnect twice at ERROR ("Handler for stream ... has been canceled");
    # a test's failure message should show real errors only.
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: "has been canceled" not in record.getMessage())
    try:
        tables = load_tables(args.registers)
    except RegistersError as exc:
        log.error("%s", exc)
        return 2
    try:
        asyncio.run(serve(args.port, tables))
    except OSError as exc:
        log.error("cannot serve 127.0.0.1:%d: %s", args.port, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
