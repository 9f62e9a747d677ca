package io.ringserve.deploy;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A parsed Dockerfile: global ARGs and stages of instructions (continuations joined, comments dropped). */
record Dockerfiles(Map<String, String> globalArgs, List<Stage> stages) {

    /** One instruction: upper-case keyword and its arguments. */
    record Instruction(String keyword, String args) {
    }

    /** One build stage: the image it starts from (global ARGs substituted), its name, its instructions. */
    record Stage(String from, String name, List<Instruction> instructions) {
        List<Instruction> all(String keyword) {
            return instructions.stream().filter(i -> i.keyword().equals(keyword)).toList();
        }
    }

    private static final Pattern VARIABLE = Pattern.compile("\\$\\{?([A-Za-z_][A-Za-z0-9_]*)}?");

    static Dockerfiles parse(Path file) {
        List<String> logical = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : Repo.read(file).split("\n", -1)) {
            String trimmed = line.strip();
            if (current.isEmpty() && (trimmed.isEmpty() || trimmed.startsWith("#"))) {
                continue;
            }
            if (!current.isEmpty() && trimmed.startsWith("#")) {
                continue; // comment lines inside a continuation
            }
            if (trimmed.endsWith("\\")) {
                current.append(trimmed, 0, trimmed.length() - 1).append(' ');
            } else {
                current.append(trimmed);
                logical.add(current.toString().strip());
                current.setLength(0);
            }
        }
        Map<String, String> globalArgs = new LinkedHashMap<>();
        List<Stage> stages = new ArrayList<>();
        for (String instruction : logical) {
            String[] parts = instruction.split("\\s+", 2);
            String keyword = parts[0].toUpperCase(java.util.Locale.ROOT);
            String args = parts.length > 1 ? parts[1] : "";
            if (keyword.equals("FROM")) {
                String[] from = args.split("\\s+");
                String image = from[0].startsWith("--platform") ? from[1] : from[0];
                String name = null;
                for (int i = 0; i + 1 < from.length; i++) {
                    if (from[i].equalsIgnoreCase("AS")) {
                        name = from[i + 1];
                    }
                }
                stages.add(new Stage(substitute(image, globalArgs), name, new ArrayList<>()));
            } else if (stages.isEmpty()) {
                if (keyword.equals("ARG")) {
                    String[] kv = args.split("=", 2);
                    globalArgs.put(kv[0], kv.length > 1 ? unquote(kv[1]) : "");
                }
            } else {
                stages.getLast().instructions().add(new Instruction(keyword, args));
            }
        }
        return new Dockerfiles(globalArgs, stages);
    }

    Stage last() {
        return stages.getLast();
    }

    Stage stage(String name) {
        return stages.stream().filter(s -> name.equals(s.name())).findFirst()
                .orElseThrow(() -> new AssertionError("no stage " + name));
    }

    static String unquote(String value) {
        String v = value.strip();
        return v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.substring(1, v.length() - 1) : v;
    }

    private static String substitute(String text, Map<String, String> args) {
        Matcher m = VARIABLE.matcher(text);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(out, Matcher.quoteReplacement(args.getOrDefault(m.group(1), m.group())));
        }
        m.appendTail(out);
        return out.toString();
    }
}
