# Init container "clone" of the build pod: checks the source commit out into the workspace
# emptyDir that the Kaniko container of the same pod builds from.
: "${WORKSPACE:=/workspace}" "${SHA:?}"
rm -rf "$WORKSPACE/src"
git clone --quiet --branch "$BRANCH" "$REPO_URL" "$WORKSPACE/src"
git -C "$WORKSPACE/src" -c advice.detachedHead=false checkout --quiet "$SHA"
echo "checked out $(printf '%.7s' "$SHA") into $WORKSPACE/src"
