"""The ClientApp: hands every message to fedsa's node (Rust), which rebuilds the client from
the config the message carries, restores its private state from the node's `state-dir`,
does what was asked, and saves the state before replying. The node config (`--node-config`)
says which client the node is: `partition-id` (required), `state-dir` (required),
`data-file` (the node's own data instead of partition `partition-id`), `base-dir` (where the
config's relative paths are found)."""

import fedsa_flower
from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedsa_app.records import from_records, to_records

app = ClientApp()


def _answer(msg: Message, context: Context) -> Message:
    node_config = {str(k): str(v) for k, v in context.node_config.items()}
    header, tensors = from_records(msg.content)
    reply_header, reply_tensors = fedsa_flower.handle(node_config, header, tensors)
    return Message(to_records(reply_header, reply_tensors), reply_to=msg)


@app.query()
def hello(msg: Message, context: Context) -> Message:
    return _answer(msg, context)


@app.train()
def train(msg: Message, context: Context) -> Message:
    return _answer(msg, context)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return _answer(msg, context)
