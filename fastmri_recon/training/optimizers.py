"""Optimizers: Rectified Adam (RAdam), the optimizer of the fastMRI benchmarking papers.

The papers trained with tensorflow-addons' ``RectifiedAdam``, which does not import with Keras 3.
``RAdam`` is a Keras 3 optimizer with the same options and the same update:

* Liu et al. 2020, "On the variance of the adaptive learning rate and beyond" (Algorithm 2): Adam
  whose adaptive step is multiplied by a rectification term ``r_t``, and replaced by plain
  (bias-corrected) momentum while the variance of the adaptive learning rate is intractable, that
  is while the length of the approximated simple moving average ``rho_t`` is below a threshold.
* As tensorflow-addons: ``epsilon`` is added to ``sqrt(v_hat)``; the threshold is ``sma_threshold``
  (5 by default; the paper uses 4); optional AMSGrad on the second moment; decoupled weight decay
  (``w <- w - lr_t * (step + weight_decay * w)``, with ``lr_t`` the scheduled learning rate); and an
  optional linear warmup then linear decay of the learning rate when ``total_steps > 0``.
"""

import keras
from keras import ops

from fastmri_recon.errors import ConfigError


@keras.saving.register_keras_serializable(package="fastmri_recon")
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam (Liu et al. 2020), with tensorflow-addons' ``RectifiedAdam`` options.

    At step ``t`` (1-based), for a variable ``w`` with gradient ``g``::

        m_t = beta_1 m + (1 - beta_1) g            v_t = beta_2 v + (1 - beta_2) g^2
        m_hat = m_t / (1 - beta_1^t)                v_hat = sqrt(v_t / (1 - beta_2^t))
        rho_inf = 2 / (1 - beta_2) - 1              rho_t = rho_inf - 2 t beta_2^t / (1 - beta_2^t)
        r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        step = r_t m_hat / (v_hat + epsilon)   if rho_t >= sma_threshold
               m_hat                           otherwise
        w <- w - lr_t (step + weight_decay w)

    With ``amsgrad``, ``v_t`` in ``v_hat`` is replaced by its running maximum. ``lr_t`` is the
    learning rate (a float or a ``keras.optimizers.schedules.LearningRateSchedule``) and, when
    ``total_steps > 0``, it is scaled by a warmup-then-decay schedule: with
    ``warmup = total_steps * warmup_proportion``, ``lr_t = lr * t / warmup`` for ``t <= warmup``,
    then decreases linearly from ``lr`` to ``min_lr`` at ``t = total_steps`` and stays there.

    Works in ``model.fit``, in custom loops (``optimizer.apply``), under ``tf.distribute``
    strategies (create it inside ``strategy.scope()``), and round-trips through
    ``model.save("x.keras")`` with its state (moments, step count).

    Args:
        learning_rate: float or ``LearningRateSchedule``; the peak learning rate.
        beta_1: decay rate of the first moment, in ``[0, 1)``.
        beta_2: decay rate of the second moment, in ``[0, 1)``.
        epsilon: added to ``sqrt(v_hat)`` for numerical stability, ``>= 0``.
        weight_decay: decoupled weight decay coefficient, ``None`` or ``0`` for none. Variables
            can be excluded with ``exclude_from_weight_decay`` as for any Keras optimizer.
        amsgrad: use the running maximum of the second moment (AMSGrad).
        sma_threshold: the adaptive, rectified step is used once ``rho_t >= sma_threshold``.
        total_steps: number of training steps of the warmup/decay schedule; 0 disables it.
        warmup_proportion: fraction of ``total_steps`` spent warming up, in ``[0, 1]``.
        min_lr: learning rate reached at ``total_steps`` by the linear decay, ``>= 0``.
        name: name of the optimizer.
        **kwargs: other ``keras.optimizers.Optimizer`` arguments (``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, ``use_ema``, ``loss_scale_factor``,
            ``gradient_accumulation_steps``, ...).

    Raises:
        ConfigError: if an option is outside its valid range.
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        weight_decay=None,
        amsgrad=False,
        sma_threshold=5.0,
        total_steps=0,
        warmup_proportion=0.1,
        min_lr=0.0,
        name="radam",
        **kwargs,
    ):
        for option, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"RAdam: {option} must be in [0, 1), got {value}")
        checks = (
            ("epsilon", epsilon, epsilon >= 0),
            ("weight_decay", weight_decay, weight_decay is None or weight_decay >= 0),
            ("total_steps", total_steps, int(total_steps) == total_steps and total_steps >= 0),
            ("warmup_proportion", warmup_proportion, 0.0 <= warmup_proportion <= 1.0),
            ("min_lr", min_lr, min_lr >= 0),
        )
        for option, value, valid in checks:
            if not valid:
                raise ConfigError(f"RAdam: {option} has an invalid value {value!r}")
        super().__init__(
            learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs
        )
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)
        self.sma_threshold = float(sma_threshold)
        self.total_steps = int(total_steps)
        self.warmup_proportion = float(warmup_proportion)
        self.min_lr = float(min_lr)

    def build(self, var_list):
        """Create the optimizer state: first and second moments (and their max with AMSGrad).

        Args:
            var_list: the model variables this optimizer will update.
        """
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def _scheduled_learning_rate(self, learning_rate, step):
        """Learning rate at (1-based, float) ``step`` after the optional warmup / decay."""
        if self.total_steps <= 0:
            return learning_rate
        total = float(self.total_steps)
        warmup = total * self.warmup_proportion
        decay_steps = max(total - warmup, 1.0)
        warming = learning_rate * step / (warmup if warmup > 0 else 1.0)
        decaying = learning_rate + (self.min_lr - learning_rate) / decay_steps * ops.minimum(
            step - warmup, decay_steps
        )
        return ops.where(step <= warmup, warming, decaying)

    def _apply_weight_decay(self, variables):
        # The decay is applied in `update_step`, with the scheduled (warmup) learning rate as
        # tensorflow-addons did, instead of the base class's unscheduled one.
        return

    def update_step(self, gradient, variable, learning_rate):
        """Apply one RAdam update to ``variable``.

        Args:
            gradient: the gradient of the loss with respect to ``variable``, same shape.
            variable: the model variable to update.
            learning_rate: the current (unscheduled) learning rate, a scalar.
        """
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        # The step-dependent scalars are computed in float64: in float32, rho_t is off by up to
        # ~0.03 in the first steps with beta_2 = 0.999, enough to flip the rectification branch
        # (rho_5 = 4.996 against the threshold 5).
        step = ops.cast(self.iterations + 1, "float64")
        lr = self._scheduled_learning_rate(ops.cast(learning_rate, "float64"), step)
        beta_1_power = ops.power(ops.cast(self.beta_1, "float64"), step)
        beta_2_power = ops.power(ops.cast(self.beta_2, "float64"), step)
        rho_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        rho_t = rho_inf - 2.0 * step * beta_2_power / (1.0 - beta_2_power)
        if rho_inf > 4.0:
            ratio = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            # clamped: the ratio is negative in the steps that take the momentum branch
            r_t = ops.cast(ops.sqrt(ops.maximum(ratio, 0.0)), dtype)
            rectified = rho_t >= self.sma_threshold
        else:
            # beta_2 < 0.6: rho_t never exceeds 4, the variance is never tractable
            r_t, rectified = None, None

        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsgrad:
            v_max = self._velocity_hats[index]
            self.assign(v_max, ops.maximum(v_max, v))
            v = v_max

        m_hat = m / ops.cast(1.0 - beta_1_power, dtype)
        if rectified is None:
            update = m_hat
        else:
            v_hat = ops.sqrt(v / ops.cast(1.0 - beta_2_power, dtype))
            adaptive = r_t * m_hat / (v_hat + self.epsilon)
            update = ops.where(rectified, adaptive, m_hat)
        if self.weight_decay and self._use_weight_decay(variable):
            update = update + ops.cast(self.weight_decay, dtype) * variable
        self.assign_sub(variable, ops.cast(lr, dtype) * update)

    def get_config(self):
        """The constructor arguments, for ``from_config`` and ``model.save``."""
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
                "sma_threshold": self.sma_threshold,
                "total_steps": self.total_steps,
                "warmup_proportion": self.warmup_proportion,
                "min_lr": self.min_lr,
            }
        )
        return config

