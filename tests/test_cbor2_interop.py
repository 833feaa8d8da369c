"""protocol.codec against cbor2, the reference CBOR library on the host."""

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol.errors import UNSORTED_KEYS, ProtocolError

ints = st.integers(min_value=-(2**64), max_value=2**64 - 1)
scalars = st.one_of(ints, st.binary(max_size=40), st.text(max_size=20), st.booleans(), st.none())
# keys of one class, for which length-first and bytewise order coincide
uint_keys = st.integers(min_value=0, max_value=2**64 - 1)
short_text_keys = st.text(max_size=23)  # all with a one-byte head


def values(keys):
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=6),
            st.dictionaries(keys, inner, max_size=6),
        ),
        max_leaves=25,
    )


mixed_keys = st.one_of(ints, st.binary(max_size=4), st.text(max_size=30))


@pytest.mark.req("LINK-CBOR-4", "LINK-CBOR-1")
@settings(max_examples=300, deadline=None)
@given(st.one_of(values(uint_keys), values(short_text_keys)))
def test_same_bytes_as_cbor2_canonical_for_single_class_keys(v):
    ours = codec.dumps(v)
    assert ours == cbor2.dumps(v, canonical=True)
    assert codec.loads(ours) == v


@pytest.mark.req("LINK-CBOR-4")
@settings(max_examples=300, deadline=None)
@given(values(mixed_keys))
def test_cbor2_reads_everything_we_write(v):
    assert cbor2.loads(codec.dumps(v)) == v


@pytest.mark.req("LINK-CBOR-4", "LINK-CBOR-2")
@settings(max_examples=300, deadline=None)
@given(values(mixed_keys))
def test_we_read_cbor2_output_exactly_when_its_key_order_is_bytewise(v):
    theirs = cbor2.dumps(v, canonical=True)
    if theirs == codec.dumps(v):
        assert codec.loads(theirs) == v
    else:
        # the only difference in the subset is map key order (RFC 8949 4.2.3
        # length-first vs 4.2.1 bytewise); we refuse the other order
        with pytest.raises(ProtocolError) as e:
            codec.loads(theirs)
        assert e.value.code == UNSORTED_KEYS


@pytest.mark.req("LINK-CBOR-4")
def test_documented_difference_on_mixed_keys():
    v = {"a": 1, 256: 2}
    assert cbor2.dumps(v, canonical=True).hex() == "a2616101190100 02".replace(" ", "")
    assert codec.dumps(v).hex() == "a219010002616101"
    assert cbor2.loads(codec.dumps(v)) == v


@pytest.mark.req("LINK-CBOR-2")
def test_cbor2_things_outside_the_subset_are_refused():
    for v in (
        1.0,
        float("nan"),
        float("inf"),
        cbor2.CBORTag(2, b"\x01"),
        cbor2.undefined,
        cbor2.CBORSimpleValue(99),
    ):
        with pytest.raises(ProtocolError):
            codec.loads(cbor2.dumps(v, canonical=True))
    with pytest.raises(ProtocolError):
        codec.loads(cbor2.dumps(2**64))  # a bignum tag
