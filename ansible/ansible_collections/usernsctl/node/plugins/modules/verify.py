#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: verify
short_description: Prove that containers really run in user namespaces with usernsctl verify
description:
  - Runs C(usernsctl verify --output json) after the daemon restarted and returns its report.
  - "Docker: dockerd must list C(name=userns), and a fresh probe container that usernsctl makes itself
    (an image of its own binary: no registry, C(--network none)) must map container root to the start
    of the remap user's ranges. The probe container and image are removed on every path."
  - "containerd, Kubernetes: the given processes or containers, or every container process in a user
    namespace of its own: maps inside the kubelet's range, one range per pod, the rootfs mechanism and,
    for Kubernetes, idmapped volumes."
  - The task fails when verification fails, with each failing check and its remedy in C(msg).
    Every warning becomes an Ansible warning. Nothing is changed (the probe container is transient),
    so it runs in check mode too.
version_added: "0.1.0"
author: usernsctl authors (@usernsctl)
requirements:
  - the usernsctl binary on the managed host
  - "root on the managed host (C(become: true))"
options:
  target:
    description: What to verify. Default is detected from what is installed.
    type: str
    choices: [docker, containerd, kubernetes]
  pid:
    description: Process IDs of containers to verify.
    type: list
    elements: int
    default: []
  container:
    description: Container IDs to verify (docker inspect, else crictl inspect, else ctr task ls).
    type: list
    elements: str
    default: []
  all:
    description: "containerd, Kubernetes: every container process in a user namespace other than its runtime's (the default without I(pid) and I(container))."
    type: bool
    default: false
  user:
    description: "Docker: the remap user (default: daemon.json); containerd, Kubernetes: the owner of the ranges containers must use (default: the kubelet's)."
    type: str
  kubernetes_version:
    description: Kubernetes version, C(MAJOR.MINOR) (default C(kubelet --version)).
    type: str
  probe_timeout:
    description: "Docker: how long the probe container may take to start and write its file; a Go duration or seconds."
    type: str
  warnings:
    description: Report each warning of the report as an Ansible warning.
    type: bool
    default: true
  root:
    description: Verify a snapshot tree (recorded /proc) at this path instead of the host; no probe container runs.
    type: path
  binary:
    description: Path of the usernsctl binary on the host. Default is C(usernsctl) on C(PATH).
    type: path
notes:
  - Supports C(check_mode); it runs the same way in check mode. The usernsctl.node.userns role skips it
    in check mode when the apply before it would change something.
seealso:
  - module: usernsctl.node.apply
'''

EXAMPLES = r'''
- name: Prove it on a fresh container
  usernsctl.node.verify:
    target: docker

- name: Every user-namespaced pod on a Kubernetes node
  usernsctl.node.verify:
    target: kubernetes
    all: true
'''

RETURN = r'''
verified:
  description: Nothing failed.
  returned: when usernsctl printed its report
  type: bool
ready:
  description: The report's own verdict (older usernsctl name of I(verified)).
  returned: when usernsctl printed its report
  type: bool
msg:
  description: The verdict; when not verified, each failing check with its remedy.
  returned: always
  type: str
target:
  description: The target verified.
  returned: when usernsctl printed its report
  type: str
checks:
  description: Every verify check (C(id), C(title), C(status), C(message), C(remedy), C(evidence)).
  returned: when usernsctl printed its report
  type: list
  elements: dict
summary:
  description: How many checks have each status.
  returned: when usernsctl printed its report
  type: dict
schema:
  description: The JSON contract of the report.
  returned: when usernsctl printed its report
  type: str
  sample: usernsctl.verify/v1
version:
  description: usernsctl's version.
  returned: when usernsctl reports it
  type: str
changed:
  description: Always false.
  returned: always
  type: bool
cmd:
  description: The command line that ran.
  returned: when usernsctl ran
  type: list
  elements: str
rc:
  description: usernsctl's exit code.
  returned: when usernsctl ran
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.usernsctl.node.plugins.module_utils.usernsctl import (
    duration, run_report)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type='str', choices=['docker', 'containerd', 'kubernetes']),
            pid=dict(type='list', elements='int', default=[]),
            container=dict(type='list', elements='str', default=[]),
            all=dict(type='bool', default=False),
            user=dict(type='str'),
            kubernetes_version=dict(type='str'),
            probe_timeout=dict(type='str'),
            warnings=dict(type='bool', default=True),
            root=dict(type='path'),
            binary=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    args = []
    if p['target']:
        args.append('--target=' + p['target'])
    if p['pid']:
        args.append('--pid=' + ','.join(str(x) for x in p['pid']))
    containers = [c.strip() for c in p['container'] if c and c.strip()]
    if containers:
        args.append('--container=' + ','.join(containers))
    if p['all']:
        args.append('--all')
    if p['user']:
        args.append('--user=' + p['user'])
    if p['kubernetes_version']:
        args.append('--kubernetes-version=' + p['kubernetes_version'])
    if p['probe_timeout']:
        args.append('--probe-timeout=' + duration(p['probe_timeout']))
    if p['root']:
        args.append('--root=' + p['root'])
    run_report(module, 'verify', args, warnings=p['warnings'])


if __name__ == '__main__':
    main()
