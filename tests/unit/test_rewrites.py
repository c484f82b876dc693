"""rewrites.py: what the server made of a write is noted, and a child a webhook rewrites compares
equal to what the operator sends, while a hand edit or a spec change still shows."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from fastapi_operator.compare import values_match
from fastapi_operator.kinds import DEPLOYMENT
from fastapi_operator.rewrites import ABSENT, ServerRewrites, as_sent, rewrites_between


def deployment(image: str, **container) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": image, **container}]}}}}


def mirrored(obj: dict) -> dict:
    """An image-mirror webhook: registry.example/ becomes mirror.example/."""
    served = copy.deepcopy(obj)
    for container in served["spec"]["template"]["spec"]["containers"]:
        container["image"] = container["image"].replace("registry.example/", "mirror.example/")
    served["metadata"]["resourceVersion"] = "7"
    return served


def test_a_rewritten_image_compares_equal_while_it_holds_what_the_server_answered():
    sent = deployment("registry.example/app:1")
    rewrites = ServerRewrites()
    shown, exact = rewrites.note(DEPLOYMENT, sent, mirrored(sent))
    assert not exact
    assert values_match(sent, shown)
    later = mirrored(sent)
    later["status"] = {"readyReplicas": 2}
    assert values_match(sent, rewrites.shown(DEPLOYMENT, later))
    assert later["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.example/app:1", "the read was edited"


def test_a_hand_edit_and_a_spec_change_still_differ():
    sent = deployment("registry.example/app:1")
    rewrites = ServerRewrites()
    rewrites.note(DEPLOYMENT, sent, mirrored(sent))
    edited = mirrored(sent)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil.example/app:1"
    assert not values_match(sent, rewrites.shown(DEPLOYMENT, edited))
    assert not values_match(deployment("registry.example/app:2"), rewrites.shown(DEPLOYMENT, mirrored(sent)))


def test_an_answer_as_sent_forgets_the_child():
    sent = deployment("registry.example/app:1")
    rewrites = ServerRewrites()
    rewrites.note(DEPLOYMENT, sent, mirrored(sent))
    assert len(rewrites) == 1
    rewrites.note(DEPLOYMENT, sent, copy.deepcopy(sent))  # the webhook is gone
    assert len(rewrites) == 0
    # And an image that really is the mirror's no longer reads as the registry's.
    assert not values_match(sent, rewrites.shown(DEPLOYMENT, mirrored(sent)))


def test_a_dropped_field_is_noted_as_absent_and_a_list_of_another_length_is_not_noted():
    sent = deployment("app:1", workingDir="/srv")
    served = copy.deepcopy(sent)
    del served["spec"]["template"]["spec"]["containers"][0]["workingDir"]
    (dropped,) = rewrites_between(sent, served)
    assert dropped.served is ABSENT and dropped.path[-1] == "workingDir"
    assert values_match(sent, as_sent(served, (dropped,)))
    injected = copy.deepcopy(sent)
    injected["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "proxy:1"})
    assert rewrites_between(sent, injected) is None


def test_quantities_and_empty_values_the_server_canonicalises_are_no_rewrite():
    sent = deployment("app:1", resources={"limits": {"memory": "0.5Gi"}}, env=[{"name": "A", "value": ""}])
    served = copy.deepcopy(sent)
    served["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "512Mi"
    del served["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    assert rewrites_between(sent, served) == ()


scalars = st.one_of(st.text(max_size=5), st.integers(-3, 3), st.booleans())
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3),
    st.dictionaries(st.text("abc", min_size=1, max_size=2), inner, min_size=1, max_size=3)), max_leaves=12)


@given(st.dictionaries(st.sampled_from(["spec", "data", "rules"]), trees, min_size=1), st.data())
def test_any_scalar_rewrite_reads_back_as_sent(spec, data):
    sent = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, **spec}
    served = copy.deepcopy(sent)

    def rewrite(node):
        if isinstance(node, dict):
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return data.draw(st.one_of(st.just(node), scalars))
    served = {**served, **{key: rewrite(value) for key, value in spec.items()}}
    rewrites = rewrites_between(sent, served)
    assert rewrites is not None
    assert values_match(sent, as_sent(served, rewrites))
