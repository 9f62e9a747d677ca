package io.ringserve.model.template;

import java.util.List;
import java.util.Map;

/** Anything a template can call: globals, bound string/dict methods, macros, {@code loop.cycle}. */
@FunctionalInterface
interface PyCallable {
    Object call(List<Object> args, Map<String, Object> kwargs);
}
