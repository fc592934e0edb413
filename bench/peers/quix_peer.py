"""Quix Streams 3.28 running the peers' job: RocksDB state with its changelog, defaults.

python bench/peers/quix_peer.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC EXPECT RESULT_FILE STATE_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from quixstreams import Application, State

from bench.peers.job import Progress, amount, rung


def main() -> None:
    bootstrap, source, sink, expect, result, state_dir = sys.argv[1:7]
    progress = Progress(Path(result), int(expect))
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{source}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
    )
    inputs = app.topic(source, value_deserializer="json")
    outputs = app.topic(sink, value_serializer="json")

    def step(value: dict[str, Any], state: State) -> dict[str, Any] | None:
        total = state.get("sum", 0.0) + amount(value)
        state.set("sum", total)
        tier = rung(total)
        changed = tier != state.get("tier", 0)
        if changed:
            state.set("tier", tier)
        progress.tick()
        return {"customer_id": value["customer_id"], "tier": tier} if changed else None

    sdf = app.dataframe(inputs)
    sdf = sdf.apply(step, stateful=True).filter(lambda v: v is not None)
    sdf.to_topic(outputs)
    app.run()


if __name__ == "__main__":
    main()
