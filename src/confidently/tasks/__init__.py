"""The task stage: tasks and verbalizers (next-token distribution → class mass) and few-shot prompts."""
