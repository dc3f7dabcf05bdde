"""A word-level Hugging Face tokenizer for the closed vocabulary of the world."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS, SOL = "<pad>", "<unk>", "<bos>", "<eos>", "<sol>"
# Oracle modes and draft separator (prompted, as for an LLM oracle) and a classification token.
MODE_TOKENS = ("<synth>", "<refine>", "<style>", "<draft>", "<cls>")
SPECIALS = (PAD, UNK, BOS, EOS, SOL) + MODE_TOKENS


def prompt_text(problem_text: str) -> str:
    """The prompt every tiny-world model sees: the problem, then the solution separator."""
    return f"{BOS} {problem_text} {SOL}"


def build_tokenizer(texts, max_number: int) -> PreTrainedTokenizerFast:
    """Word-level tokenizer: specials, the integers ``0..max_number``, then every word in ``texts``."""
    words: set[str] = set()
    for t in texts:
        words.update(t.split())
    numbers = [str(i) for i in range(max_number + 1)]
    rest = sorted(w for w in words if w not in SPECIALS and not w.isdigit())
    vocab = {tok: i for i, tok in enumerate(list(SPECIALS) + numbers + rest)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # No decoder: tokens are joined with single spaces, the world's canonical form. (A WordPiece
    # decoder would glue the oracle's `####` answer marker to the previous word.)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[SOL, *MODE_TOKENS],
        padding_side="left",
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    return fast
