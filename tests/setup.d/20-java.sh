#!/usr/bin/env bash
# The JVM side of the suite: Apache Kafka (reference broker, command-line tools), the Java client,
# Kafka Streams and Kafka Connect, pinned by tests/java/pom.xml. Maven resolves them into
# target/kafka-libs (its local repository is target/m2); javac compiles tests/java/src into
# target/java-classes. Skips, with the reason the JVM tests print, when java/javac/mvn is missing.
set -euo pipefail
REPO="${OXKA_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}"
for tool in java javac mvn; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skipping the JVM clients: \`$tool\` is not installed (the Java, Kafka-tools, Streams, Connect and OXKA_TARGET=kafka tests will skip)"
        exit 0
    fi
done
LIBS="$REPO/target/kafka-libs"
CLASSES="$REPO/target/java-classes"
POM="$REPO/tests/java/pom.xml"
STAMP="$LIBS/.pom.sha256"
want="$(sha256sum "$POM" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "resolving the Kafka artifacts of tests/java/pom.xml into target/kafka-libs"
    rm -rf "$LIBS"
    mvn -B -q -f "$POM" -Dmaven.repo.local="$REPO/target/m2" \
        dependency:copy-dependencies -DoutputDirectory="$LIBS"
    echo "$want" > "$STAMP"
fi
SRC="$REPO/tests/java/src"
newest_src="$(find "$SRC" -name '*.java' -newer "$CLASSES/.stamp" 2>/dev/null | head -1 || true)"
if [ ! -f "$CLASSES/.stamp" ] || [ -n "$newest_src" ] || [ "$STAMP" -nt "$CLASSES/.stamp" ]; then
    echo "compiling tests/java/src into target/java-classes"
    rm -rf "$CLASSES"
    mkdir -p "$CLASSES"
    javac -nowarn -encoding UTF-8 --release 17 -cp "$LIBS/*" -d "$CLASSES" "$SRC"/*.java
    touch "$CLASSES/.stamp"
fi
echo "JVM clients ready: $(ls "$LIBS" | wc -l) jars, classes in target/java-classes"
