"""``plamo-fast translate``: the text fields of training records translated by any generation
backend, with code, URLs, LaTeX and placeholders masked (:mod:`.masking`), long texts split at
paragraph, line and sentence boundaries (:mod:`.chunking`), the fields of each record shape
(:mod:`.fields`), prompts (:mod:`.prompts`), quality filters (:mod:`.filters`), a persistent
translation cache (:mod:`.cache`), resumable outputs (:mod:`.store`), the report
(:mod:`.report`) and the run loop (:mod:`.run`)."""
