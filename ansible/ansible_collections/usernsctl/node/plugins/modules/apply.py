#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: apply
short_description: Prepare a host for user-namespaced containers with usernsctl apply
description:
  - Runs C(usernsctl apply --target TARGET --output json) on the host and reports what it did.
  - usernsctl writes exactly what the target needs (subordinate ID ranges and the remap account,
    daemon.json C(userns-remap), containerd C(slow_chown) or overlay metacopy, the kubelet's range)
    atomically, locked and backed up; a second run changes nothing.
  - usernsctl runs its preflight first and refuses, writing nothing, when a check fails that the
    apply does not fix. The task then fails with usernsctl's message and each blocking check with
    its remedy.
  - In check mode it runs C(usernsctl apply --dry-run), which writes nothing; C(changed) says
    whether a real run would change anything. With C(--diff), the unified diff of every file
    (and live setting) that changes is shown.
  - Password hashes in diffs of /etc/shadow and /etc/gshadow are masked.
version_added: "0.1.0"
author: usernsctl authors (@usernsctl)
requirements:
  - "the usernsctl binary on the managed host (static: no other dependency)"
  - "root on the managed host (C(become: true))"
options:
  target:
    description: What is about to be enabled.
    type: str
    required: true
    choices: [docker, containerd, kubernetes]
  user:
    description:
      - "Docker: the remap user: C(default), C(NAME), C(NAME:GROUP), C(UID) or C(UID:GID)."
      - Default is the C(userns-remap) already in daemon.json, else C(default) (C(dockremap)).
    type: str
  count:
    description: "Docker: ids per new range (default: C(SUB_UID_COUNT) from /etc/login.defs, 65536)."
    type: int
  max_pods:
    description: "Kubernetes: size the kubelet's range for this many pods (default: the kubelet config, else 110)."
    type: int
  kubernetes_version:
    description: "Kubernetes version to plan for, C(MAJOR.MINOR) (default: C(kubelet --version))."
    type: str
  slow_chown:
    description:
      - "containerd 2.x: C(slow_chown) for the overlayfs snapshotter: C(auto) (when overlay over idmapped
        layers does not work on the snapshotter's filesystem), C(on) or C(off)."
      - A YAML boolean is taken as C(on) or C(off). Default is usernsctl's, C(auto).
    type: str
  metacopy:
    description:
      - "containerd 1.7: overlay C(metacopy): C(auto) (on), C(on) or C(off)."
      - A YAML boolean is taken as C(on) or C(off). Default is usernsctl's, C(auto).
    type: str
  fix_sysctl:
    description: Also set C(user.max_user_namespaces) (live and in /etc/sysctl.d) when it is 0.
    type: bool
    default: false
  force:
    description:
      - Failing check IDs that must not block the apply, or C(all). Never overrides bad input.
    type: list
    elements: str
    default: []
  restart:
    description:
      - Restart the daemons whose config changed and wait until they answer; if one does not come
        back within I(restart_timeout), usernsctl restores the previous files and restarts again, and
        the task fails.
      - With systemd as PID 1 usernsctl uses systemctl; otherwise set I(restart_command).
    type: bool
    default: false
  restart_command:
    description:
      - Command (run by C(sh -c), with C(USERNSCTL_DAEMONS) naming the daemons) that restarts the
        daemons when systemd is not PID 1. Passed to usernsctl as it is.
    type: str
  restart_timeout:
    description: How long to wait for a restarted daemon to answer; a Go duration (C(90s), C(2m)) or seconds.
    type: str
  root:
    description:
      - Apply to the host tree at this path instead of the host (image builds, tests). Writes only
        under it and executes nothing; I(restart) is refused there.
    type: path
  binary:
    description: Path of the usernsctl binary on the host. Default is C(usernsctl) on C(PATH).
    type: path
notes:
  - Supports C(check_mode) (C(usernsctl apply --dry-run)) and C(diff_mode).
  - usernsctl exit codes are 0 done, 1 refused or failed (nothing half-written), 2 bad input or usage
    (nothing written); the task fails on 1 and 2 with usernsctl's message.
seealso:
  - module: usernsctl.node.check
  - module: usernsctl.node.verify
  - module: usernsctl.node.revert
'''

EXAMPLES = r'''
- name: User namespaces for Docker, dockerd restarted (rolled back if it does not come back)
  usernsctl.node.apply:
    target: docker
    restart: true

- name: containerd 2.x for Kubernetes 1.33 with slow_chown forced on
  usernsctl.node.apply:
    target: kubernetes
    kubernetes_version: "1.33"
    slow_chown: "on"
    restart: true
  register: userns

- name: Bake it into an image tree (nothing is executed)
  usernsctl.node.apply:
    target: docker
    root: /srv/image-root
'''

RETURN = r'''
changed:
  description: Whether usernsctl changed (in check mode, would change) any file or live setting.
  returned: always
  type: bool
msg:
  description:
    - usernsctl's verdict. On failure its message, then each blocking check with its remedy, then the fix.
  returned: always
  type: str
  sample: changed 6 files and 0 live settings; restart the daemon to take effect
target:
  description: The target usernsctl planned for.
  returned: when usernsctl printed its report
  type: str
  sample: docker
changes:
  description: Every file changed (in check mode, that would change).
  returned: when usernsctl printed its report
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
      sample: /etc/subuid
    action:
      description: C(create), C(update) or C(delete).
      type: str
    backup:
      description: Where usernsctl saved the previous content (empty for created files and in check mode).
      type: str
    diff:
      description: The unified diff.
      type: str
live:
  description: Live settings changed (C(path), C(before), C(value), C(why)).
  returned: when usernsctl printed its report
  type: list
  elements: dict
notes:
  description: What usernsctl decided and why (allocated ranges, created accounts).
  returned: when usernsctl printed its report
  type: list
  elements: str
restart_required:
  description: A daemon must restart for the change to take effect.
  returned: when usernsctl printed its report
  type: bool
restarted:
  description: usernsctl restarted the daemons (I(restart)) and they answered.
  returned: when usernsctl printed its report
  type: bool
dry_run:
  description: The run was a C(--dry-run) (check mode).
  returned: in check mode
  type: bool
blocking:
  description: When usernsctl refused, the failing checks (C(id), C(title), C(status), C(message), C(remedy), C(evidence)).
  returned: on refusal
  type: list
  elements: dict
fix:
  description: What to do about a refusal or bad input.
  returned: on refusal, when usernsctl says
  type: str
schema:
  description: The JSON contract of the object usernsctl printed.
  returned: when usernsctl printed its report
  type: str
  sample: usernsctl.apply/v1
version:
  description: usernsctl's version.
  returned: when usernsctl reports it
  type: str
cmd:
  description: The command line that ran.
  returned: when usernsctl ran
  type: list
  elements: str
rc:
  description: usernsctl's exit code.
  returned: when usernsctl ran
  type: int
stderr:
  description: usernsctl's stderr, when it wrote any.
  returned: when not empty
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.usernsctl.node.plugins.module_utils.usernsctl import (
    mode, restart_args, run_change)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type='str', required=True, choices=['docker', 'containerd', 'kubernetes']),
            user=dict(type='str'),
            count=dict(type='int'),
            max_pods=dict(type='int'),
            kubernetes_version=dict(type='str'),
            slow_chown=dict(type='str'),
            metacopy=dict(type='str'),
            fix_sysctl=dict(type='bool', default=False),
            force=dict(type='list', elements='str', default=[]),
            restart=dict(type='bool', default=False),
            restart_command=dict(type='str'),
            restart_timeout=dict(type='str'),
            root=dict(type='path'),
            binary=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    args = ['--target=' + p['target']]
    if p['user']:
        args.append('--user=' + p['user'])
    if p['count'] is not None:
        args.append('--count=%d' % p['count'])
    if p['max_pods'] is not None:
        args.append('--max-pods=%d' % p['max_pods'])
    if p['kubernetes_version']:
        args.append('--kubernetes-version=' + p['kubernetes_version'])
    for name in ('slow_chown', 'metacopy'):
        value = mode(module, name)
        if value:
            args.append('--%s=%s' % (name.replace('_', '-'), value))
    if p['fix_sysctl']:
        args.append('--fix-sysctl')
    force = [f.strip() for f in p['force'] if f and f.strip()]
    if force:
        args.append('--force=' + ','.join(force))
    args += restart_args(p)
    if p['root']:
        args.append('--root=' + p['root'])
    run_change(module, 'apply', args)


if __name__ == '__main__':
    main()
