# Step "bump": record the pushed image's tag in k8s/kustomization.yaml and push. Only the
# newTag line changes, so the installer's next render keeps it byte for byte. A newer tag
# already on the branch wins; a push that lost a race is redone on top of the new head.
: "${WORK:=/tmp/work}" "${TAG:?}"
mkdir -p "$WORK"
rm -rf "$WORK/bump"
git clone --quiet --branch "$BRANCH" "$REPO_URL" "$WORK/bump"
cd "$WORK/bump"
attempt=1
while :; do
    now=$(current_tag k8s/kustomization.yaml)
    if [ "$now" = "$TAG" ]; then
        echo "image tag is already $TAG"
        exit 0
    fi
    # tags start with their UTC build time: a strictly later one on the branch wins
    if [ "${now%%-*}" != "$now" ] && [ "${now%%-*}" \> "${TAG%%-*}" ]; then
        echo "the branch already deploys a newer image ($now): keeping it"
        exit 0
    fi
    sed -i "s/^\([[:space:]]*newTag:[[:space:]]*\).*\$/\1$TAG/" k8s/kustomization.yaml
    git add k8s/kustomization.yaml
    git_as_bot commit --quiet -m "Deploy devpi image $TAG" -m "$BUMP_TRAILER"
    if git push --quiet origin "HEAD:refs/heads/$BRANCH"; then
        echo "pushed image tag $TAG to $BRANCH"
        exit 0
    fi
    if [ "$attempt" -ge 3 ]; then
        echo "could not push the tag bump after $attempt attempts" >&2
        exit 1
    fi
    attempt=$((attempt + 1))
    git fetch --quiet origin "$BRANCH"
    git reset --quiet --hard FETCH_HEAD
done
