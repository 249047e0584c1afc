# Shared by the build steps (thinkube-devpi). No `set -x`: nothing here may echo a key.
set -eu
: "${REPO_URL:?}" "${BRANCH:?}" "${SSH_DIR:=/etc/git-ssh}" "${HOME:=/tmp/home}"
BUMP_TRAILER="Thinkube-Devpi-Build: tag-bump"
mkdir -p "$HOME"
if [ -f "$SSH_DIR/ssh-privatekey" ]; then
    # ssh wants a key only its user can read; the Secret volume's file is group-readable
    umask 077
    mkdir -p "$HOME/.ssh"
    cp "$SSH_DIR/ssh-privatekey" "$HOME/.ssh/id_deploy"
    chmod 0600 "$HOME/.ssh/id_deploy"
    umask 022
    # pinned host keys from the Secret; StrictHostKeyChecking stays on
    export GIT_SSH_COMMAND="ssh -i $HOME/.ssh/id_deploy -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=$SSH_DIR/known_hosts -o StrictHostKeyChecking=yes"
fi
export GIT_TERMINAL_PROMPT=0
git_as_bot() {
    git -c user.name=thinkube-devpi-build -c user.email=devpi-build@thinkube.invalid "$@"
}
current_tag() {
    sed -n 's/^[[:space:]]*newTag:[[:space:]]*//p' "$1" | head -n 1 | tr -d "\"'"
}
