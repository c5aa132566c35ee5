"""fedsa's messages as Flower records: the JSON header in a ConfigRecord, the tensors as
float32 NumPy arrays in an ArrayRecord (so Flower's mods see ordinary arrays)."""

from collections import OrderedDict

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

HEADER = "fedsa"
TENSORS = "tensors"


def to_records(header: str, tensors: list) -> RecordDict:
    arrays = OrderedDict()
    for name, shape, data in tensors:
        values = np.frombuffer(data, dtype="<f4").reshape(tuple(shape))
        arrays[name] = Array(values)
    return RecordDict({HEADER: ConfigRecord({"header": header}), TENSORS: ArrayRecord(array_dict=arrays)})


def from_records(content: RecordDict) -> tuple[str, list]:
    if HEADER not in content.config_records:
        raise ValueError("not a fedsa message: it has no `fedsa` config record")
    header = content.config_records[HEADER]["header"]
    tensors = []
    if TENSORS in content.array_records:
        for name, array in content.array_records[TENSORS].items():
            values = np.ascontiguousarray(array.numpy(), dtype="<f4")
            tensors.append((name, list(values.shape), values.tobytes()))
    return header, tensors
