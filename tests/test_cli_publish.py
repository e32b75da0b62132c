"""`image-tagger publish` from a local checkout: the real dockerd builds, the real htpasswd registry receives.

The password only ever travels on stdin (`--password-stdin`); every test checks it is shown nowhere.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from support.cli import assert_input_error, explain, run_cli
from support.receiver import closed_port_url, serve_receiver
from support.registry import Registry
from support.sample_app import git
from test_hostile_output import action_explain, run_action

from image_tagger.rules.publishinputs import RECEIVER_ENV


@pytest.fixture
def repository(request: pytest.FixtureRequest, registry: Registry, docker_client: docker.DockerClient) -> Iterator[str]:
    """A repository only this test pushes to; its images leave the daemon afterwards."""
    name = "cli-publish/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    yield name
    for image in docker_client.images.list(name=f"{registry.host}/{name}"):
        docker_client.images.remove(image.id, force=True)


def publish(
    registry: Registry,
    workspace: Path,
    repository: str,
    *extra: str,
    password: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The documented local release: user on the command line, password piped in."""
    return run_cli(
        "publish",
        *("--image", f"{registry.host}/{repository}", "--workspace", str(workspace)),
        *("--username", registry.username, "--password-stdin", "--json", *extra),
        stdin=(registry.password if password is None else password) + "\n",
        env=env,
    )


def local_images(docker_client: docker.DockerClient, registry: Registry, repository: str) -> list[str]:
    return [tag for image in docker_client.images.list(name=f"{registry.host}/{repository}") for tag in image.tags]


def assert_not_shown(done: subprocess.CompletedProcess[str], password: str) -> None:
    assert password not in done.stdout and password not in done.stderr, explain(done)


def test_branch_build_is_pushed_with_the_registry_digest(registry: Registry, sample_app: Path, repository: str) -> None:
    sha = git(sample_app, "rev-parse", "HEAD")
    committed = git(sample_app, "show", "-s", "--format=%ct", "HEAD")

    done = publish(registry, sample_app, repository)

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    # No push event here: the timestamp falls back to the commit time (and says so).
    assert result["version"] == f"main-{sha[:7]}-{committed}"
    assert registry.tags(repository) == [result["version"]]
    digest = registry.manifest_digest(repository, result["version"])
    assert result["digest"] == digest
    assert result["image"] == f"{registry.host}/{repository}:{result['version']}@{digest}"
    assert result["pushed"] is True
    assert_not_shown(done, registry.password)


def test_tag_push_publishes_the_release_with_its_labels(
    registry: Registry, sample_app: Path, repository: str, docker_client: docker.DockerClient
) -> None:
    git(sample_app, "tag", "v1.2.3")
    sha = git(sample_app, "rev-parse", "HEAD")

    done = publish(registry, sample_app, repository, "--major-version", "1")

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["version"] == "1.2.3"
    assert registry.tags(repository) == ["1.2.3"]
    assert result["digest"] == registry.manifest_digest(repository, "1.2.3")
    built = docker_client.images.get(f"{registry.host}/{repository}:1.2.3")
    assert built.labels["org.opencontainers.image.version"] == "1.2.3"
    assert built.labels["org.opencontainers.image.revision"] == sha
    assert registry.password not in json.dumps(built.attrs)
    assert_not_shown(done, registry.password)


def test_wrong_password_pushes_nothing_and_is_not_shown(
    registry: Registry, sample_app: Path, repository: str, docker_client: docker.DockerClient
) -> None:
    wrong = "wr0ng-cli-Pa55-k3q9"

    done = publish(registry, sample_app, repository, password=wrong)

    assert (done.returncode, done.stdout) == (1, ""), explain(done)
    assert registry.host in done.stderr.splitlines()[-1], explain(done)
    assert_not_shown(done, wrong)
    assert registry.tags(repository) == []
    assert local_images(docker_client, registry, repository) == []  # login comes before the build


def test_release_of_another_major_is_refused_before_the_build(
    registry: Registry, sample_app: Path, repository: str, docker_client: docker.DockerClient
) -> None:
    git(sample_app, "tag", "v1.2.3")

    done = publish(registry, sample_app, repository, "--major-version", "2")

    assert_input_error(done, "1.2.3")
    assert_not_shown(done, registry.password)
    assert registry.tags(repository) == []
    assert local_images(docker_client, registry, repository) == []


# --- notifying every cluster's Flux Receiver ------------------------------------------------------------------------

PRODUCTION_TOKEN, STAGING_TOKEN = "prod-rcv-7Hq2-token", "stag-rcv-9Kx4-token"


def receiver_flags(*urls: str) -> list[str]:
    return [arg for url in urls for arg in ("--flux-receiver-url", url)]


def test_publish_notifies_each_cluster_with_its_own_token(
    registry: Registry, sample_app: Path, repository: str
) -> None:
    with serve_receiver(PRODUCTION_TOKEN) as production, serve_receiver(STAGING_TOKEN) as staging:
        done = publish(
            registry,
            sample_app,
            repository,
            *receiver_flags(production.url, staging.url),
            env={RECEIVER_ENV: f"{PRODUCTION_TOKEN}\n{STAGING_TOKEN}\n"},
        )

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["flux_notified"] is True
    assert result["flux_receivers"] == [
        {"origin": production.origin, "notified": True},
        {"origin": staging.origin, "notified": True},
    ]
    for receiver in (production, staging):
        [delivery] = receiver.deliveries
        assert delivery.accepted and json.loads(delivery.body)["digest"] == result["digest"]
        assert receiver.path not in done.stderr
    for secret in (PRODUCTION_TOKEN, STAGING_TOKEN, registry.password):
        assert_not_shown(done, secret)


def test_publish_signs_for_every_receiver_with_one_token(registry: Registry, sample_app: Path, repository: str) -> None:
    with (
        serve_receiver(PRODUCTION_TOKEN, "app-image-tagger") as production,
        serve_receiver(PRODUCTION_TOKEN, "staging-image-tagger") as staging,
    ):
        done = publish(
            registry,
            sample_app,
            repository,
            *receiver_flags(production.url, staging.url),
            env={RECEIVER_ENV: PRODUCTION_TOKEN},
        )

    assert done.returncode == 0, explain(done)
    assert [r["notified"] for r in json.loads(done.stdout)["flux_receivers"]] == [True, True]
    assert [d.status for d in production.deliveries + staging.deliveries] == [200, 200]
    assert_not_shown(done, PRODUCTION_TOKEN)


def test_tokens_that_do_not_pair_up_with_the_urls_push_nothing(
    registry: Registry, sample_app: Path, repository: str, docker_client: docker.DockerClient
) -> None:
    with serve_receiver(PRODUCTION_TOKEN) as production, serve_receiver(STAGING_TOKEN) as staging:
        done = publish(
            registry,
            sample_app,
            repository,
            *receiver_flags(production.url, staging.url),
            env={RECEIVER_ENV: f"{PRODUCTION_TOKEN}\n{STAGING_TOKEN}\nthird-token-x"},
        )

    assert_input_error(done, "flux-receiver-secret has 3 tokens for 2 URLs", "one token for every URL")
    for secret in (PRODUCTION_TOKEN, STAGING_TOKEN, "third-token-x", production.path, staging.path):
        assert_not_shown(done, secret)
    assert registry.tags(repository) == []
    assert local_images(docker_client, registry, repository) == []  # refused before the build
    assert production.deliveries == staging.deliveries == []


def test_a_receiver_that_is_down_is_a_warning_and_the_others_are_notified(
    registry: Registry, sample_app: Path, repository: str
) -> None:
    down = closed_port_url()
    with serve_receiver(STAGING_TOKEN) as staging:
        done = publish(
            registry,
            sample_app,
            repository,
            *receiver_flags(down, staging.url),
            env={RECEIVER_ENV: f"{PRODUCTION_TOKEN}\n{STAGING_TOKEN}"},
        )

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["pushed"] is True and registry.tags(repository) == [result["version"]]
    down_origin = down.rpartition("/hook/")[0]
    assert result["flux_notified"] is False
    assert result["flux_receivers"] == [
        {"origin": down_origin, "notified": False},
        {"origin": staging.origin, "notified": True},
    ]
    assert f"Flux not notified: {down_origin}: connection failed" in done.stderr, explain(done)
    assert f"Flux notified: {staging.origin} answered 200" in done.stderr, explain(done)
    assert "/hook/" not in done.stderr, explain(done)
    assert [d.status for d in staging.deliveries] == [200]


# --- one report, one schema ------------------------------------------------------------------------------------------


def test_publish_json_is_the_object_the_action_writes_to_its_json_output(
    registry: Registry, sample_app: Path, repository: str, tmp_path: Path
) -> None:
    """The action (its real entry point, as a step's process) and `publish --json`, one checkout, one registry:
    the same keys with the same types, serialised alike. (Their images differ in the source label only: the
    action names the GitHub repository.)"""
    image = f"{registry.host}/{repository}"
    with serve_receiver(PRODUCTION_TOKEN) as receiver:
        login = {"username": registry.username, "password": registry.password}
        flux = {"flux-receiver-url": receiver.url, "flux-receiver-secret": PRODUCTION_TOKEN}
        action = run_action(sample_app, tmp_path / "runner", {"image": image, **login, **flux})
        done = publish(
            registry, sample_app, repository, *receiver_flags(receiver.url), env={RECEIVER_ENV: PRODUCTION_TOKEN}
        )

    assert action["returncode"] == 0, action_explain(action)
    assert done.returncode == 0, explain(done)
    from_action, from_cli = json.loads(action["outputs"]["json"]), json.loads(done.stdout)
    assert {key: type(value) for key, value in from_cli.items()} == {
        key: type(value) for key, value in from_action.items()
    }
    assert "flux_receivers" in from_cli
    assert done.stdout == json.dumps(from_cli, sort_keys=True) + "\n"  # serialised alike, too
    assert action["outputs"]["json"] == json.dumps(from_action, sort_keys=True)
    for key in ("kind", "version", "tags", "pushed", "outcome", "tag_states", "flux_notified", "flux_receivers"):
        assert from_cli[key] == from_action[key], key
    assert [d.status for d in receiver.deliveries] == [200, 200]
