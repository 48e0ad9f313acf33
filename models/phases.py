"""The phases of a pass: what one sequence length means to the roofline.

The roofline (roofline.py) reads three per-request token counts and a training flag: n new tokens
computed, S tokens of KV cache held, c tokens each new token attends to on average, and t. Every
phase sets them from one length s:

| phase | n (new tokens) | S (KV held) | c (attended) | t | what the pass is |
|---|---|---|---|---|---|
| training | s | 0 | (s+1)/2 | 1 | whole sequences, causal mask, no KV cache kept |
| prefill | s | s | (s+1)/2 | 0 | the prompt in one pass, writing its KV cache |
| decode | 1 | s | s | 0 | one new token per request against a cache of s tokens |
| input | 1 | 0 | 0 | as given | a network without attention: one input per request |

| symbol | unit | meaning | source |
|---|---|---|---|
| s | token | sequence length: the training sequence, the prompt, or the decode context | input |
| n, S, t | | from memory.py | |
| c | | from roofline.py | |

Causal attention: under the causal mask the i-th token of a sequence attends to i tokens (itself and
those before it), so over s tokens the mean is (1 + 2 + ... + s)/s = (s+1)/2 (Vaswani et al. 2017,
masked self-attention).

``PHASES`` holds each phase as a substitution; ``at(phase, length)`` sets the length to any
expression (serving.py uses the prompt and the mean decode context). The definitions below are the
same substitutions, named ``<phase>_<symbol>``, so solvers evaluate (and differentiate) them.
"""
from mlsysim_opt.symbolic import Sheet, sym

from .memory import S, n, t
from .roofline import c

s = sym("sequence_length", "token",
        "sequence length of the phase: training sequence, prompt, or context of a decode step", "input", lower=1)

sheet = Sheet("phases", "Phases of a pass: training, prefill, decode and single inputs as roofline inputs",
              walls=[1, 2, 4], iron_law_term="FLOPs (tokens per pass)",
              sources=["Vaswani et al. 2017, Attention Is All You Need (masked self-attention)",
                       "Pope et al. 2022, Efficiently Scaling Transformer Inference (prefill and decode)"])

causal = sheet.define("causal_attended_context", (s + 1) / 2, "token",
                      "mean tokens one token attends to under the causal mask")

PHASES = {
    "training": {n: s, S: 0, c: causal, t: 1},
    "prefill": {n: s, S: s, c: causal, t: 0},
    "decode": {n: 1, S: s, c: s, t: 0},
    "input": {n: 1, S: 0, c: 0},      # the training flag is the caller's: networks train or infer alike
}
SETS = (n, S, c)
"""The roofline symbols a phase sets from the sequence length (``t`` is a flag, not a length)."""

_MEANING = {n: "new tokens per request", S: "KV-cache tokens held per request", c: "mean attended context"}
for _phase, _subs in PHASES.items():
    for _x in SETS:
        sheet.define(f"{_phase}_{_x.name}", _subs[_x], "token", f"{_MEANING[_x]} in the {_phase} phase")


def definitions(phase: str) -> dict[str, str]:
    """``{definition name: roofline symbol name}`` of one phase."""
    return {f"{phase}_{x.name}": x.name for x in SETS}


def at(phase: str, length) -> dict:
    """The substitution of ``phase`` with the sequence length set to ``length`` (an expression)."""
    return {x: (v.xreplace({s: length}) if hasattr(v, "xreplace") else v) for x, v in PHASES[phase].items()}


def phase_of(*, attention: bool, training: bool) -> str:
    """The phase of one roofline pass: a language model trains on whole sequences or decodes one token
    per request; a network without attention processes one input per request."""
    if not attention:
        return "input"
    return "training" if training else "decode"
