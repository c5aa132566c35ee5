"""The ServerApp: runs fedsa's server (the Rust engine: sampling, fedsa's aggregators and
strategies, the run folder, checkpoints, resume) with Flower's Grid as the way to the nodes."""

import json
import time

import fedsa_flower
from flwr.app import Context, Message, MessageType
from flwr.serverapp import Grid, ServerApp

from fedsa_app.records import from_records, to_records

app = ServerApp()

# Which ClientApp function a fedsa request goes to.
_TYPES = {"hello": MessageType.QUERY, "train": MessageType.TRAIN, "evaluate": MessageType.EVALUATE}


class GridLink:
    """What fedsa's server needs of a transport: node ids, push, pull (with a timeout)."""

    def __init__(self, grid: Grid, reply_timeout: float):
        self.grid = grid
        self.reply_timeout = reply_timeout
        self.tickets: dict[int, str] = {}
        self.next_ticket = 0

    def node_ids(self) -> list[int]:
        return [int(n) for n in self.grid.get_node_ids()]

    def push(self, node: int, header: str, tensors: list) -> int:
        kind = json.loads(header)["kind"]
        # The message expires when the server stops waiting for it: a node that comes back
        # later must not be handed a round the server has already closed.
        message = Message(
            content=to_records(header, tensors),
            dst_node_id=node,
            message_type=_TYPES[kind],
            ttl=self.reply_timeout,
        )
        ids = list(self.grid.push_messages([message]))
        if len(ids) != 1 or not ids[0]:
            raise RuntimeError(f"Flower did not accept the message to node {node}")
        self.next_ticket += 1
        self.tickets[self.next_ticket] = ids[0]
        return self.next_ticket

    def pull(self, ticket: int) -> tuple[str, list]:
        message_id = self.tickets.pop(ticket)
        deadline = time.monotonic() + self.reply_timeout
        while True:
            for reply in self.grid.pull_messages([message_id]):
                if reply.has_error():
                    raise RuntimeError(f"Flower reported: {reply.error.reason} (code {reply.error.code})")
                return from_records(reply.content)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply within {self.reply_timeout:.0f} s")
            time.sleep(0.1)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    if not str(cfg.get("config", "")):
        raise ValueError("run config `config` is empty: pass --run-config 'config=\"/abs/path/fedsa.toml\"'")
    link = GridLink(grid, float(cfg.get("reply-timeout", 900.0)))
    summary = fedsa_flower.serve(
        str(cfg["config"]),
        link,
        lambda line: print(line, flush=True),
        resume=bool(cfg.get("resume", False)),
        connect_timeout_s=float(cfg.get("connect-timeout", 120.0)),
    )
    print("summary: " + summary, flush=True)
