"""The local model's worker process: one GGUF model, loaded once, answering one call at a time.

Run by ``local_process.LocalWorker`` as ``python -m agentops.providers.local_worker MODEL``,
never by users. A crash in llama.cpp (SIGSEGV, SIGILL, the OOM killer) ends this
process only; the run that started it sees the exit and retries on a fresh one.

Protocol: one JSON object per line. The parent writes requests on stdin::

    {"id": 1, "messages": [...], "max_tokens": 64, "temperature": 0.7, "seed": 1234,
     "json_schema": {...} | null}
    {"cancel": 1}

and this process writes on stdout, after ``{"ready": true}`` once the model is loaded::

    {"id": 1, "text": "next piece"}                              (any number of these)
    {"id": 1, "done": true, "input_tokens": 30, "output_tokens": 12, "finish_reason": "stop"}
    {"id": 1, "error": "...", "kind": "bad_request" | "server"}

End of stdin means the parent is gone (it exited, or was killed with SIGKILL):
the worker exits at once, so it never outlives its run.
"""

from __future__ import annotations

import codecs
import json
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

CONTEXT_TOKENS = 2048
DEFAULT_TEMPERATURE = 0.8  # llama.cpp's own default


class _Requests:
    """Reads stdin on a thread: requests are queued, cancels are noted at once."""

    def __init__(self, stream: IO[str]) -> None:
        self.pending: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cancelled: set[int] = set()
        self._stream = stream
        threading.Thread(target=self._read, name="stdin", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self._stream:
                message = json.loads(line)
                if "cancel" in message:
                    self.cancelled.add(message["cancel"])
                else:
                    self.pending.put(message)
        finally:
            os._exit(0)  # the parent closed the pipe or died: never outlive the run


class _Model:
    """The model and its chat template, as the GGUF file carries them."""

    def __init__(self, path: str) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = Llama(model_path=path, n_ctx=CONTEXT_TOKENS, verbose=False)
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{path} has no chat template: use a chat (instruct) GGUF model")
        self.eos = self.llama.token_eos()
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._text_of(self.eos),
            bos_token=self._text_of(self.llama.token_bos()),
            stop_token_ids=[self.eos],
        )

    def _text_of(self, token: int) -> str:
        return (
            ""
            if token < 0
            else self.llama.detokenize([token], special=True).decode("utf-8", "replace")
        )

    def answer(
        self, request: dict[str, Any], cancelled: set[int], send: Callable[[dict[str, Any]], None]
    ) -> None:
        number = request["id"]
        formatted = self.formatter(messages=request["messages"])
        stops = {formatted.stop} if isinstance(formatted.stop, str) else set(formatted.stop or ())
        prompt = self.llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        room = CONTEXT_TOKENS - len(prompt)
        if room <= 0:
            send(
                {
                    "id": number,
                    "kind": "bad_request",
                    "error": f"the prompt has {len(prompt)} tokens; the local model's context holds {CONTEXT_TOKENS}",
                }
            )
            return
        grammar = None
        if request.get("json_schema") is not None:
            from llama_cpp.llama_grammar import LlamaGrammar

            # Grammar-constrained sampling: only tokens that keep the answer valid JSON of the schema.
            grammar = LlamaGrammar.from_json_schema(
                json.dumps(request["json_schema"]), verbose=False
            )
        limit = min(request["max_tokens"], room)
        temperature = request.get("temperature")
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        generated = 0
        finish_reason = "length"
        # Seeded per call, after a full reset: reusing the cached prompt prefix evaluates its last
        # token in a batch of another size, which shifts the logits, so the same seed gave
        # different answers ('The world is a place', then 'The world of fantasy.').
        self.llama.set_seed(request["seed"])
        self.llama.reset()  # type: ignore[no-untyped-call]
        tokens = self.llama.generate(
            prompt,
            temp=DEFAULT_TEMPERATURE if temperature is None else temperature,
            reset=True,
            grammar=grammar,
        )
        for token in tokens:
            if number in cancelled:
                break
            if token == self.eos or self._text_of(token) in stops:
                finish_reason = "stop"
                break
            generated += 1
            piece = decoder.decode(self.llama.detokenize([token]))
            if piece:
                send({"id": number, "text": piece})
            if generated >= limit:
                break
        cancelled.discard(number)
        tail = decoder.decode(b"", final=True)
        if tail:
            send({"id": number, "text": tail})
        send(
            {
                "id": number,
                "done": True,
                "input_tokens": len(prompt),
                "output_tokens": generated,
                "finish_reason": finish_reason,
            }
        )


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run decides when its worker stops
    # The protocol gets stdout's pipe to itself; anything native code prints goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    def send(message: dict[str, Any]) -> None:  # only the main thread writes
        out.write(json.dumps(message) + "\n")
        out.flush()

    requests = _Requests(sys.stdin)
    try:
        model = _Model(argv[0])
    except (ValueError, RuntimeError, OSError) as error:
        send({"failed": f"could not load the GGUF model {argv[0]}: {error}"})
        return 1
    send({"ready": True})
    while True:
        request = requests.pending.get()
        if request["id"] in requests.cancelled:  # cancelled while it waited its turn
            requests.cancelled.discard(request["id"])
            continue
        try:
            model.answer(request, requests.cancelled, send)
        except (RuntimeError, ValueError) as error:
            send({"id": request["id"], "kind": "server", "error": str(error)})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
