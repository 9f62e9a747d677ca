package io.ringserve.model.template;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/** The {@code loop} variable inside a for body; one instance per loop, advanced each iteration. */
final class LoopContext implements PyCallable {
    private static final Object NOTHING = new Object();

    private final List<Object> items;
    private final int depth0;
    private final PyCallable recurse;
    private int index0;
    private Object lastChanged = NOTHING;

    /** {@code recurse} renders the loop body for a nested iterable; null when the loop is not recursive. */
    LoopContext(List<Object> items, int depth0, PyCallable recurse) {
        this.items = items;
        this.depth0 = depth0;
        this.recurse = recurse;
    }

    void advanceTo(int index) {
        this.index0 = index;
    }

    Object attribute(String name) {
        int length = items.size();
        return switch (name) {
            case "index" -> (long) index0 + 1;
            case "index0" -> (long) index0;
            case "revindex" -> (long) (length - index0);
            case "revindex0" -> (long) (length - index0 - 1);
            case "first" -> index0 == 0;
            case "last" -> index0 == length - 1;
            case "length" -> (long) length;
            case "depth" -> (long) depth0 + 1;
            case "depth0" -> (long) depth0;
            case "previtem" -> index0 > 0 ? items.get(index0 - 1) : new Undefined("there is no previous item");
            case "nextitem" -> index0 + 1 < length ? items.get(index0 + 1) : new Undefined("there is no next item");
            case "cycle" -> (PyCallable) (args, kwargs) -> {
                if (args.isEmpty()) {
                    throw new TemplateException("no items for cycling given");
                }
                return args.get(index0 % args.size());
            };
            case "changed" -> (PyCallable) (args, kwargs) -> {
                Object value = List.copyOf(args.stream().map(a -> a == null ? NOTHING : a).toList());
                if (!Objects.equals(value, lastChanged)) {
                    lastChanged = value;
                    return true;
                }
                return false;
            };
            default -> Undefined.attribute(this, name);
        };
    }

    @Override
    public Object call(List<Object> args, Map<String, Object> kwargs) {
        if (recurse == null) {
            throw new TemplateException("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.");
        }
        return recurse.call(args, kwargs);
    }

    @Override
    public String toString() {
        return "<LoopContext " + (index0 + 1) + "/" + items.size() + ">";
    }
}
