"""``tuitalk-cli``: the TuiTalk terminal client (Textual), a thin driver of the client core."""
