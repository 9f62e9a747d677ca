package io.ringserve.worker.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code --key value} pairs of one command, checked against the keys the command accepts. A switch
 * ({@link #SWITCHES}) may stand alone: {@code --dummy-weights} means {@code --dummy-weights true}.
 */
final class Options {
    static final Set<String> SWITCHES = Set.of("dummy-weights", "ignore-eos", "skip-special-tokens", "profile");
    private final Map<String, String> values;

    private Options(Map<String, String> values) {
        this.values = values;
    }

    static Options parse(String[] args, Set<String> allowed) {
        Map<String, String> values = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.length() == 2) {
                throw new UsageException("unexpected argument '" + a + "'");
            }
            String key = a.substring(2);
            String value;
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            } else if (SWITCHES.contains(key) && (i + 1 >= args.length || args[i + 1].startsWith("--"))) {
                value = "true";
            } else {
                if (i + 1 >= args.length) {
                    throw new UsageException("--" + key + " needs a value");
                }
                value = args[++i];
            }
            if (!allowed.contains(key)) {
                throw new UsageException("unknown option --" + key);
            }
            if (values.put(key, value) != null) {
                throw new UsageException("--" + key + " given twice");
            }
        }
        return new Options(values);
    }

    boolean has(String key) {
        return values.containsKey(key);
    }

    String get(String key) {
        return values.get(key);
    }

    String get(String key, String fallback) {
        return values.getOrDefault(key, fallback);
    }

    String required(String key) {
        String v = values.get(key);
        if (v == null) {
            throw new UsageException("--" + key + " is required");
        }
        return v;
    }

    int intValue(String key, int fallback) {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + key + " must be an integer, got '" + v + "'");
        }
    }

    long longValue(String key) {
        return longValue(key, 0);
    }

    long longValue(String key, long fallback) {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + key + " must be an integer, got '" + v + "'");
        }
    }

    double doubleValue(String key, double fallback) {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        try {
            return Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + key + " must be a number, got '" + v + "'");
        }
    }

    boolean boolValue(String key, boolean fallback) {
        String v = values.get(key);
        if (v == null) {
            return fallback;
        }
        return switch (v.trim().toLowerCase()) {
            case "true", "1", "yes" -> true;
            case "false", "0", "no" -> false;
            default -> throw new UsageException("--" + key + " must be true or false, got '" + v + "'");
        };
    }
}
