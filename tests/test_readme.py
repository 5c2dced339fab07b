"""The README's commands are the ones CI runs, and its example runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    blocks = [b.strip() for b in _bash_blocks(readme)]
    assert len(blocks) == 2, blocks
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1] in ci.splitlines()


def test_readme_example_runs():
    readme = (ROOT / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    exec(compile(code, "README.md", "exec"), {})
