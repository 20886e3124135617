"""A setting refused at start says "the README's Configuration lists each setting": six of them
were only in a table under Data at scale. Every setting of the service is in that section."""

from app.config import PROJECT_ROOT, Settings


def _first_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None) or [alias or field.upper()]
    return str(choices[0])


def test_every_setting_is_in_the_readme_configuration() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    start = readme.index("\n## Configuration\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    named = {_first_name(field) for field in Settings.model_fields}
    # Datadog's own variables: one row names the agent's and points to Observability
    missing = sorted(
        name for name in named if f"`{name}`" not in section and not name.startswith("DD_")
    )
    assert "PIPELINE_INPUT_DIR" in named
    assert missing == []
