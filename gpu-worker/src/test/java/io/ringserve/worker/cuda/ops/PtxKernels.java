package io.ringserve.worker.cuda.ops;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel entry points of one PTX file (build-kernels.sh keeps each {@code .cu}'s compute_80 PTX as
 * {@code <build dir>/kernels-ptx/<file>.ptx}): what the driver would check a launch against if it could. For each
 * {@code .entry} its parameters in order, its launch bounds ({@code .maxntid} / {@code .reqntid}), its static
 * shared memory, whether it reads the dynamic shared memory, and which 64-bit parameters it certainly uses as
 * global addresses ({@code cvta.to.global} of the loaded value).
 *
 * <p>Only what NVVM emits for {@code extern "C" __global__} functions is understood; an unknown parameter form is
 * kept as {@link Param.Kind#OTHER}, which no Java argument matches.
 */
record PtxKernels(String file, Map<String, Entry> entries) {

    /** One {@code .param} of an entry: its PTX type ({@code .u64}, …), kind, and whether it is certainly a global address. */
    record Param(String type, Kind kind, boolean address) {
        /** What a Java argument must be to fill the parameter. */
        enum Kind {
            /** {@code .u64 .s64 .b64}: a pointer (DeviceBuffer, CUdeviceptr, null) or a {@code long long} (Long). */
            BITS64("64-bit (pointer or long long)"),
            /** {@code .u32 .s32 .b32}: an int (Integer). */
            BITS32("32-bit int"),
            /** {@code .f32}: a float (Float). */
            F32("float"),
            /** Anything else (by-value structs, arrays, 8/16-bit, double): no launch argument Kernel packs fits. */
            OTHER("unsupported");

            final String description;

            Kind(String description) {
                this.description = description;
            }
        }

        @Override
        public String toString() {
            return type + (address ? " (used as a global address)" : "");
        }
    }

    /**
     * One {@code .entry}.
     *
     * @param maxThreads       threads per block at most ({@code .maxntid} x·y·z or {@code .reqntid}), 0 when not declared
     * @param requiredBlock    {@code .reqntid} x, y, z, or null
     * @param staticShared     bytes of {@code .shared} variables the entry declares or references
     * @param usesDynamicShared whether the entry references an {@code .extern .shared} array
     */
    record Entry(String name, List<Param> params, int maxThreads, int[] requiredBlock, long staticShared, boolean usesDynamicShared) {
    }

    private static final Pattern ENTRY = Pattern.compile("^\\s*(?:\\.visible\\s+|\\.weak\\s+|\\.extern\\s+)*\\.entry\\s+([\\w$.]+)\\s*\\(");
    private static final Pattern NTID = Pattern.compile("^\\s*\\.(maxntid|reqntid)\\s+(\\d+)(?:\\s*,\\s*(\\d+))?(?:\\s*,\\s*(\\d+))?");
    private static final Pattern SHARED = Pattern.compile(
            "^\\s*(\\.extern\\s+)?\\.shared\\s+(?:\\.align\\s+\\d+\\s+)?\\.([a-z]+)(\\d+)\\s+([\\w$.]+)\\s*(?:\\[(\\d*)\\])?");
    private static final Pattern LD_PARAM = Pattern.compile("ld\\.param\\.[usb]64\\s+(%\\w+),\\s*\\[([\\w$.]+)_param_(\\d+)\\]");
    private static final Pattern CVTA_GLOBAL = Pattern.compile("cvta\\.to\\.global\\.u64\\s+%\\w+,\\s*(%\\w+)");
    private static final Pattern SYMBOL = Pattern.compile("[A-Za-z_$][\\w$.]*");

    /** Parses {@code <file>.ptx}. */
    static PtxKernels read(Path ptx) {
        String name = ptx.getFileName().toString().replaceFirst("\\.ptx$", "");
        try {
            return parse(name, Files.readAllLines(ptx, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + ptx, e);
        }
    }

    static PtxKernels parse(String file, List<String> lines) {
        Map<String, Long> moduleShared = new HashMap<>(); // module-scope .shared variables: bytes
        Set<String> dynamicShared = new HashSet<>();      // module-scope .extern .shared arrays
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = code(lines.get(i));
            Matcher entry = ENTRY.matcher(line);
            if (!entry.find()) {
                Matcher shared = SHARED.matcher(line);
                if (shared.find()) {
                    if (shared.group(1) != null) {
                        dynamicShared.add(shared.group(4));
                    } else {
                        moduleShared.put(shared.group(4), sharedBytes(shared));
                    }
                }
                continue;
            }
            String name = entry.group(1);
            // the parameter list: from '(' to the matching ')', over as many lines as it takes
            StringBuilder list = new StringBuilder(line.substring(entry.end()));
            while (list.indexOf(")") < 0) {
                if (++i >= lines.size()) {
                    throw new IllegalArgumentException(file + ".ptx: unterminated parameter list of " + name);
                }
                list.append(' ').append(code(lines.get(i)));
            }
            String params = list.substring(0, list.indexOf(")")).strip();
            List<String> paramTexts = params.isEmpty() ? List.of() : List.of(params.split("\\s*,\\s*"));
            // performance directives up to the body's '{'
            int maxThreads = 0;
            int[] required = null;
            String rest = list.substring(list.indexOf(")") + 1);
            while (!rest.contains("{")) {
                if (++i >= lines.size()) {
                    throw new IllegalArgumentException(file + ".ptx: " + name + " has no body");
                }
                rest = code(lines.get(i));
                Matcher ntid = NTID.matcher(rest);
                if (ntid.find()) {
                    int[] dims = {Integer.parseInt(ntid.group(2)), dim(ntid.group(3)), dim(ntid.group(4))};
                    maxThreads = dims[0] * dims[1] * dims[2];
                    if (ntid.group(1).equals("reqntid")) {
                        required = dims;
                    }
                }
            }
            // the body, to the matching '}'
            List<String> body = new ArrayList<>();
            int depth = 0;
            for (boolean started = false; ; ) {
                for (char c : rest.toCharArray()) {
                    if (c == '{') {
                        depth++;
                        started = true;
                    } else if (c == '}') {
                        depth--;
                    }
                }
                body.add(rest);
                if (started && depth == 0) {
                    break;
                }
                if (++i >= lines.size()) {
                    throw new IllegalArgumentException(file + ".ptx: unterminated body of " + name);
                }
                rest = code(lines.get(i));
            }
            entries.put(name, entry(file, name, paramTexts, maxThreads, required, body, moduleShared, dynamicShared));
        }
        return new PtxKernels(file, Map.copyOf(entries));
    }

    private static Entry entry(String file, String name, List<String> paramTexts, int maxThreads, int[] required, List<String> body,
                               Map<String, Long> moduleShared, Set<String> dynamicShared) {
        Set<Integer> addresses = new HashSet<>();
        Map<String, Integer> loadedFrom = new HashMap<>(); // register -> parameter index it was loaded from
        long staticShared = 0;
        boolean dynamic = false;
        Set<String> symbols = new HashSet<>();
        for (String line : body) {
            Matcher ld = LD_PARAM.matcher(line);
            if (ld.find() && ld.group(2).equals(name)) {
                loadedFrom.put(ld.group(1), Integer.parseInt(ld.group(3)));
            }
            Matcher cvta = CVTA_GLOBAL.matcher(line);
            if (cvta.find() && loadedFrom.containsKey(cvta.group(1))) {
                addresses.add(loadedFrom.get(cvta.group(1)));
            }
            Matcher shared = SHARED.matcher(line);
            if (shared.find()) {
                staticShared += sharedBytes(shared);
            }
            Matcher sym = SYMBOL.matcher(line);
            while (sym.find()) {
                symbols.add(sym.group());
            }
        }
        for (var v : moduleShared.entrySet()) {
            if (symbols.contains(v.getKey())) {
                staticShared += v.getValue();
            }
        }
        for (String v : dynamicShared) {
            dynamic |= symbols.contains(v);
        }
        List<Param> params = new ArrayList<>();
        for (int p = 0; p < paramTexts.size(); p++) {
            params.add(param(file, name, p, paramTexts.get(p), addresses.contains(p)));
        }
        return new Entry(name, List.copyOf(params), maxThreads, required, staticShared, dynamic);
    }

    /** {@code .param [.align N] .type [.ptr .space [.align N]] name[[N]]}. */
    private static Param param(String file, String entry, int index, String text, boolean address) {
        String[] tokens = text.strip().split("\\s+");
        if (tokens.length < 3 || !tokens[0].equals(".param")) {
            throw new IllegalArgumentException(file + ".ptx: parameter " + index + " of " + entry + " is not a .param: " + text);
        }
        String type = null;
        for (int t = 1; t < tokens.length - 1 && type == null; t++) {
            if (tokens[t].equals(".align")) {
                t++;
            } else if (tokens[t].matches("\\.[usbf]\\d+")) {
                type = tokens[t];
            }
        }
        boolean array = tokens[tokens.length - 1].contains("[");
        Param.Kind kind;
        if (type == null || array) {
            kind = Param.Kind.OTHER;
        } else {
            kind = switch (type) {
                case ".u64", ".s64", ".b64" -> Param.Kind.BITS64;
                case ".u32", ".s32", ".b32" -> Param.Kind.BITS32;
                case ".f32" -> Param.Kind.F32;
                default -> Param.Kind.OTHER;
            };
        }
        return new Param(type == null ? text.strip() : type + (array ? "[]" : ""), kind, address);
    }

    private static long sharedBytes(Matcher shared) {
        if (shared.group(1) != null) {
            return 0; // dynamic: sized by the launch
        }
        long element = Math.max(1, Integer.parseInt(shared.group(3)) / 8);
        String count = shared.group(5);
        return element * (count == null || count.isEmpty() ? 1 : Long.parseLong(count));
    }

    private static int dim(String s) {
        return s == null ? 1 : Integer.parseInt(s);
    }

    /** The line without its {@code //} comment. */
    private static String code(String line) {
        int comment = line.indexOf("//");
        return comment < 0 ? line : line.substring(0, comment);
    }
}
