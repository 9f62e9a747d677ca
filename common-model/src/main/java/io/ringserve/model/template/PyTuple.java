package io.ringserve.model.template;

import java.util.List;

/** A Python tuple (from tuple literals and {@code dict.items()}); renders as {@code (a, b)}. */
record PyTuple(List<Object> items) {

    static PyTuple of(Object... items) {
        return new PyTuple(java.util.Arrays.asList(items));
    }
}
