package io.ringserve.model.template;

/**
 * jinja2's default {@code Undefined}: falsy, renders as "", iterates as empty, and fails with
 * {@link #hint} as soon as it is used for anything else (attribute access, arithmetic, calls).
 */
record Undefined(String hint) {

    static Undefined variable(String name) {
        return new Undefined("'" + name + "' is undefined");
    }

    static Undefined attribute(Object owner, Object name) {
        return new Undefined("'" + objectType(owner) + "' has no attribute " + Values.repr(name));
    }

    static Undefined element(Object owner, Object index) {
        return new Undefined("'" + objectType(owner) + "' has no element " + Values.repr(index));
    }

    private static String objectType(Object owner) {
        return owner == null ? "None" : Values.typeName(owner) + " object";
    }

    TemplateException error() {
        return new TemplateException(hint);
    }
}
