#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Hold KVM VMs open for the whole suite, so that KVM's static keys stay on.
#
# KVM flips static keys when the first VM is created and the last one goes
# (preempt_notifier_key, patched into __schedule), and per vCPU without an
# in-kernel LAPIC (kvm_has_noapic_vcpu) or with one (apic_sw_disabled).  In
# the test host (qemu 7.2 TCG, 2 vCPUs) that code patching, while the other
# vCPU runs the code being patched, can hang the whole machine in the int3
# handler: a loop creating and closing bare VMs hangs it within a few hundred
# iterations, with vmdirty.ko not even loaded.  With these VMs alive, none of
# the keys ever returns to off.  Turning them on is patching too:
# run-suite.sh starts this with the other CPUs offline, and never ends it.
import fcntl
import os
import signal

KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_CREATE_IRQCHIP = 0xAE60

kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
plain = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
fcntl.ioctl(plain, KVM_CREATE_VCPU, 0)
lapic = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
fcntl.ioctl(lapic, KVM_CREATE_IRQCHIP, 0)
fcntl.ioctl(lapic, KVM_CREATE_VCPU, 0)
print("kvm-pin: holding 2 VMs", flush=True)
# Never ended by run-suite.sh: the power-off ends it, VMs and all.
while True:
    signal.pause()
