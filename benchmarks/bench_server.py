"""The benchmark's OpenAI-compatible server, in its own process so its CPU is not the client's.

Prints its base URL on the first line, then serves until killed. Each call
takes the latency named by the ``[latency=...]`` marker in its prompt.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shapes import latency_from_prompt

from agentops.testing.server import OpenAITestServer

if __name__ == "__main__":
    with OpenAITestServer(
        latency=latency_from_prompt, reply_tokens=8, keep_requests=False
    ) as server:
        print(server.base_url, flush=True)
        while True:
            time.sleep(3600)
