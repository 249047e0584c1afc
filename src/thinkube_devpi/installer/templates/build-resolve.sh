# Step "resolve": which source commit to build, the image tag, and whether to build at all.
# The source commit is the newest one that is not a tag bump (the build's own commits carry
# the trailer in BUMP_TRAILER), so a bump never triggers another build.
: "${OUT:=/tmp/outputs}" "${WORK:=/tmp/work}" "${ONLY_IF_CHANGED:=false}"
mkdir -p "$OUT" "$WORK"
rm -rf "$WORK/resolve"
git clone --quiet --branch "$BRANCH" "$REPO_URL" "$WORK/resolve"
cd "$WORK/resolve"
source_sha=$(git log -1 --format=%H --invert-grep --grep="^$BUMP_TRAILER\$")
short=$(printf '%.7s' "$source_sha")
built=$(current_tag k8s/kustomization.yaml)
built_sha=${built##*-}
tag="$(date -u +%Y%m%dT%H%M%S)-$short"
build=true
if [ "$ONLY_IF_CHANGED" = "true" ] && [ "$built_sha" = "$short" ]; then
    build=false
    echo "source commit $short is already built (image tag $built): nothing to do"
else
    echo "source commit $short (image tag now: ${built:-none}): building tag $tag"
fi
printf '%s' "$source_sha" > "$OUT/sha"
printf '%s' "$tag" > "$OUT/tag"
printf '%s' "$build" > "$OUT/build"
