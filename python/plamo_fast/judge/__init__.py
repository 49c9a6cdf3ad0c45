"""LLM-as-a-judge, shared by ``score`` and ``eval``: prompt templates and the parsing of ratings
and verdicts (:mod:`~plamo_fast.judge.templates`), FastChat's judge prompt files
(:mod:`~plamo_fast.judge.fastchat`), and asking a judge through any generation backend with
re-asks of unparseable judgements (:mod:`~plamo_fast.judge.judge`)."""
