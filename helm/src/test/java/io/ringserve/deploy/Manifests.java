package io.ringserve.deploy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;

/** Objects of a rendered chart, with navigation helpers for assertions. */
record Manifests(List<Map<String, Object>> objects) {

    @SuppressWarnings("unchecked")
    static Manifests parse(String yaml) {
        List<Map<String, Object>> objects = new ArrayList<>();
        for (Object doc : new Yaml(new LoaderOptions()).loadAll(yaml)) {
            if (doc instanceof Map<?, ?> map && !map.isEmpty()) {
                objects.add((Map<String, Object>) map);
            }
        }
        return new Manifests(List.copyOf(objects));
    }

    List<Map<String, Object>> ofKind(String kind) {
        return objects.stream().filter(o -> kind.equals(o.get("kind"))).toList();
    }

    Optional<Map<String, Object>> find(String kind, String name) {
        return ofKind(kind).stream().filter(o -> name.equals(at(o, "metadata.name"))).findFirst();
    }

    Map<String, Object> get(String kind, String name) {
        return find(kind, name).orElseThrow(() -> new AssertionError("no " + kind + "/" + name + " in " + names()));
    }

    List<String> names() {
        return objects.stream().map(o -> o.get("kind") + "/" + at(o, "metadata.name")).toList();
    }

    /** Value at a dotted path; a numeric segment indexes a list; null when absent. */
    @SuppressWarnings("unchecked")
    static <T> T at(Object root, String path) {
        Object current = root;
        for (String segment : path.split("\\.")) {
            if (current instanceof Map<?, ?> map) {
                current = map.get(segment);
            } else if (current instanceof List<?> list && segment.chars().allMatch(Character::isDigit)) {
                int index = Integer.parseInt(segment);
                current = index < list.size() ? list.get(index) : null;
            } else {
                return null;
            }
            if (current == null) {
                return null;
            }
        }
        return (T) current;
    }

    /** The container of a pod template ({@code spec.template.spec.containers}) with that name. */
    static Map<String, Object> container(Map<String, Object> workload, String name) {
        List<Map<String, Object>> containers = at(workload, "spec.template.spec.containers");
        return containers.stream().filter(c -> name.equals(c.get("name"))).findFirst()
                .orElseThrow(() -> new AssertionError("no container " + name));
    }

    /** Container port number by port name. */
    static int containerPort(Map<String, Object> container, String portName) {
        List<Map<String, Object>> ports = at(container, "ports");
        return ports.stream().filter(p -> portName.equals(p.get("name"))).map(p -> (Integer) p.get("containerPort"))
                .findFirst().orElseThrow(() -> new AssertionError("no container port " + portName));
    }

    /** The env entry's value (or null). */
    static String env(Map<String, Object> container, String name) {
        List<Map<String, Object>> env = at(container, "env");
        return env == null ? null : env.stream().filter(e -> name.equals(e.get("name")))
                .map(e -> (String) e.get("value")).findFirst().orElse(null);
    }

    /** The embedded application.yml of a ConfigMap, parsed. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> applicationYml(Map<String, Object> configMap) {
        return (Map<String, Object>) new Yaml(new LoaderOptions()).load((String) ((Map<String, Object>) configMap.get("data")).get("application.yml"));
    }
}
