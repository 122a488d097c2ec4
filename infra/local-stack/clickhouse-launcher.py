"""Runs the ClickHouse engine of libchdb.so as an HTTP server.

libchdb.so (npm package @chdb/lib-linux-x64-gnu) embeds clickhouse-local;
ClickHouse 26.x lets it open its HTTP listener with SYSTEM START LISTEN HTTP.
The engine must run on a normal thread stack, which ctypes on the main thread
gives (Node FFI does not). The second statement blocks forever to keep the
listener open; the launcher stops the server by signalling this process.

Users and grants: `auditline stack up` passes --config-file=<config.xml>, whose
<users_config> names a users.xml generated from infra/clickhouse/access.ts
(the engine cannot create users by SQL). Without it, clickhouse-local's
built-in `default` user (no password, every privilege) is the only user.

usage: clickhouse-launcher.py <libchdb.so> <data dir> <http port> [extra clickhouse args...]
"""
import ctypes
import os
import sys

lib_path, data_dir, http_port = sys.argv[1:4]
extra = sys.argv[4:]
for arg in extra:
    # A missing config file would silently start the server without its users.
    if arg.startswith("--config-file=") and not os.path.isfile(arg.split("=", 1)[1]):
        sys.exit("clickhouse-launcher: config file %s does not exist" % arg.split("=", 1)[1])
lib = ctypes.CDLL(lib_path)
args = [
    "clickhouse",
    "--path=" + data_dir,
    "--http_port=" + http_port,
    "--listen_host=127.0.0.1",
    *extra,
    "--multiquery",
    "--query",
    "SYSTEM START LISTEN HTTP; "
    "SELECT sleepEachRow(1) FROM system.numbers "
    "SETTINGS max_block_size=1, function_sleep_max_microseconds_per_block=0 FORMAT Null",
]
argv = (ctypes.c_char_p * len(args))(*[a.encode() for a in args])
entry = lib.query_stable_v2
entry.restype = ctypes.c_void_p
entry(len(args), argv)
# query_stable_v2 only returns if the blocking query ends, i.e. on error.
sys.exit(1)
