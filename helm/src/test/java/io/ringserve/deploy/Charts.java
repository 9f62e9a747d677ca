package io.ringserve.deploy;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import com.marcnuri.helm.TemplateCommand;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;

/** Renders and lints the chart through helm-java (the Helm library, in process). */
final class Charts {
    static final String RELEASE = "rs";
    static final String NAMESPACE = "llm";
    static final String KUBE_VERSION = "1.31.0";

    private Charts() {
    }

    /** {@code helm template rs helm/ring-serve -n llm -f files... --set sets...}: the rendered YAML text. */
    static String templateText(List<Path> valuesFiles, Map<String, Object> sets) {
        TemplateCommand command = new Helm(Repo.chart()).template()
                .withName(RELEASE).withNamespace(NAMESPACE).withKubeVersion(KUBE_VERSION);
        for (Path file : valuesFiles) {
            command = command.withValuesFile(file);
        }
        for (Map.Entry<String, Object> set : sets.entrySet()) {
            command = command.set(set.getKey(), set.getValue());
        }
        return command.call();
    }

    /** Rendered objects, parsed. */
    static Manifests template(List<Path> valuesFiles, Map<String, Object> sets) {
        return Manifests.parse(templateText(valuesFiles, sets));
    }

    static Manifests template(Map<String, Object> sets) {
        return template(List.of(), sets);
    }

    static Path cpuValues() {
        return Repo.chart().resolve("values-cpu.yaml");
    }

    /** {@code helm lint --strict} of the chart as it is (default values). */
    static LintResult lintStrict() {
        return new Helm(Repo.chart()).lint().strict().call();
    }

    /**
     * {@code helm lint --strict -f overlay}: helm-java's lint takes no values file, so the chart is copied and its
     * values.yaml replaced by the defaults deep-merged with the overlay.
     */
    static LintResult lintStrict(Path overlay, String name) {
        Path copy = Repo.scratch("lint-" + name).resolve("ring-serve");
        copyTree(Repo.chart(), copy);
        Map<String, Object> merged = merge(loadYaml(Repo.chart().resolve("values.yaml")), loadYaml(overlay));
        DumperOptions options = new DumperOptions();
        options.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        writeString(copy.resolve("values.yaml"), new Yaml(options).dump(merged));
        return new Helm(copy).lint().strict().call();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> loadYaml(Path file) {
        Object loaded = new Yaml(new LoaderOptions()).load(Repo.read(file));
        return loaded == null ? new LinkedHashMap<>() : (Map<String, Object>) loaded;
    }

    /** Helm's merge of values: maps merge key by key, anything else is replaced by the overlay. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> merge(Map<String, Object> base, Map<String, Object> overlay) {
        Map<String, Object> result = new LinkedHashMap<>(base);
        overlay.forEach((key, value) -> {
            if (value instanceof Map<?, ?> map && result.get(key) instanceof Map<?, ?> existing) {
                result.put(key, merge((Map<String, Object>) existing, (Map<String, Object>) map));
            } else {
                result.put(key, value);
            }
        });
        return result;
    }

    static void writeString(Path file, String text) {
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void copyTree(Path from, Path to) {
        try (Stream<Path> files = Files.walk(from)) {
            List<Path> all = new ArrayList<>(files.toList());
            for (Path source : all) {
                Path target = to.resolve(from.relativize(source).toString());
                if (Files.isDirectory(source)) {
                    Files.createDirectories(target);
                } else {
                    Files.createDirectories(target.getParent());
                    Files.copy(source, target, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
