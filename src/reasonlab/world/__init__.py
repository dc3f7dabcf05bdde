"""The worlds: the generated tiny world (problems, dialects, verifier, corpus, tokenizer), the paper
world's hub data sets, and the task layer that serves either through one interface."""
